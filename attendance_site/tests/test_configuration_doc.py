"""The documentation holds to the code: docs/configuration.md's table names exactly the environment variables the
server reads, and every relative link in README.md and docs/*.md reaches a file (and heading) that exists."""

from __future__ import annotations

import ast
import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"
# Where the server reads its environment: the settings, and the server layer (the launcher and what it loads).
READERS = [ROOT / "attendance_site" / "settings.py", *sorted((ROOT / "server").glob("*.py"))]
# Read by Django itself, set (not configured) by manage.py, asgi.py and serve.py.
NOT_SETTINGS = {"DJANGO_SETTINGS_MODULE"}
ENV_METHODS = {"bool", "str", "int", "float", "list", "tuple", "dict", "json", "url", "db_url", "db", "path",
               "cache_url", "cache", "email_url", "email", "search_url", "decimal", "bytes", "parse_value"}
NAME = re.compile(r"[A-Z][A-Z0-9_]*")


# --- names read by the code ---------------------------------------------------------------------------------------
def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value):
        return node.value
    return None


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and (
        isinstance(node.value, ast.Name) and node.value.id == "os")


def _is_env_read(call: ast.Call) -> bool:
    """env("X"), env.int("X", ...), os.environ.get("X"), os.getenv("X")."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in {"env", "getenv"}
    if isinstance(func, ast.Attribute):
        if isinstance(func.value, ast.Name) and func.value.id == "env":
            return func.attr in ENV_METHODS
        if isinstance(func.value, ast.Name) and func.value.id == "os":
            return func.attr == "getenv"
        if _is_os_environ(func.value):
            return func.attr in {"get", "pop"}  # setdefault writes a value for Django, it configures nothing
    return False


def _helpers(tree: ast.Module) -> set[str]:
    """Functions that read the variable their first parameter names, e.g. settings' `_limit(name, default)`."""
    found = set()
    for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
        if not function.args.args:
            continue
        first = function.args.args[0].arg
        for call in (node for node in ast.walk(function) if isinstance(node, ast.Call)):
            if _is_env_read(call) and call.args and isinstance(call.args[0], ast.Name) and call.args[0].id == first:
                found.add(function.name)
    return found


def environment_names(source: str) -> set[str]:
    """Every environment variable a module's source reads by a literal name."""
    tree = ast.parse(source)
    helpers = _helpers(tree)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            helper = isinstance(func, ast.Name) and func.id in helpers
            if helper or _is_env_read(node):
                names.add(_literal(node.args[0]))
        elif isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            names.add(_literal(node.slice))  # os.environ["X"]
        elif isinstance(node, ast.Compare) and any(_is_os_environ(c) for c in node.comparators):
            names.add(_literal(node.left))  # "X" in os.environ
    return {name for name in names if name} - NOT_SETTINGS


def read_by_the_code() -> set[str]:
    return set().union(*(environment_names(path.read_text()) for path in READERS))


# --- names in the documentation -----------------------------------------------------------------------------------
def documented() -> set[str]:
    """The names in the first column of docs/configuration.md's table (a cell may name several)."""
    rows = [line for line in CONFIGURATION.read_text().splitlines() if line.startswith("|")]
    assert rows[0].split("|")[1].strip() == "variable", "docs/configuration.md should open its table with `variable`"
    names: set[str] = set()
    for row in rows[2:]:
        names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1]))
    return names


def test_the_reader_finds_every_way_the_code_reads_a_variable():
    source = '''
import os
env = object()
def _limit(name, default):
    return env.int(name, default=default)
A = env.bool("A_BOOL", default=False)
B = env("B_PLAIN")
C = _limit("C_HELPER", 5)
D = os.environ.get("D_GET")
E = os.environ["E_ITEM"]
F = "F_IN" in os.environ
G = os.getenv("G_GETENV")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "x")
H = {"key": "NOT_A_READ"}
'''
    assert environment_names(source) == {"A_BOOL", "B_PLAIN", "C_HELPER", "D_GET", "E_ITEM", "F_IN", "G_GETENV"}


def test_the_code_reads_what_the_settings_are_known_to_read():
    read = read_by_the_code()
    assert {"DEBUG", "SECRET_KEY", "DATABASE_URL", "LOGIN_FAILURES_PER_EMAIL", "HOST"} <= read, read


def test_docs_configuration_lists_exactly_the_variables_the_code_reads():
    read, listed = read_by_the_code(), documented()
    assert not read - listed, f"read by the code but not in docs/configuration.md: {sorted(read - listed)}"
    assert not listed - read, f"in docs/configuration.md but read by no code: {sorted(listed - read)}"


# --- relative links -----------------------------------------------------------------------------------------------
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(text: str) -> str:
    """The page without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (but - and _), spaces to hyphens."""
    text = unicodedata.normalize("NFC", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    return {anchor(match) for match in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, flags=re.M)}


def links(page: Path) -> list[str]:
    return [target for target in LINK.findall(_prose(page.read_text())) if not re.match(r"[a-z]+:", target)]


def test_anchors_are_githubs():
    assert anchor("WebSocket API — `ws://host:3000/ws?token=<JWT>`") == "websocket-api--wshost3000wstokenjwt"
    assert anchor("Login under a wrong-password flood") == "login-under-a-wrong-password-flood"


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        path, _, fragment = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            broken.append(f"{target}: no heading #{fragment} in {destination.name}")
    return broken


def test_a_missing_file_or_heading_is_a_broken_link(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## A part\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n[ok](other.md#a-part) [self](#page) ![img](other.md) [web](https://example.org/x.md)\n"
        "[gone](gone.md) [no part](other.md#no-part) [no self](#nothing)\n"
        "```\n[in code](ignored.md)\n```\n`[inline](ignored.md)`\n"
    )
    assert broken_links(page) == [
        "gone.md: no such file",
        "other.md#no-part: no heading #no-part in other.md",
        "#nothing: no heading #nothing in page.md",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert not broken_links(page)
