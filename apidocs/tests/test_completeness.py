"""The documents leave nothing out: every message of the contract that the API can answer, and docs/api.md's
tables say nothing the documents contradict."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apidocs.asyncapi import build_asyncapi
from apidocs.openapi import build_openapi
from common import messages
from common.api import http_status, iter_routes

README = Path(__file__).resolve().parents[2] / "docs" / "api.md"  # the API tables, moved out of README.md

# Messages no API route or socket answers, and why. Each must be absent from the documents, so that an entry
# that stops being true fails here.
NOT_ANSWERED = {
    messages.FORBIDDEN: "the CSRF failure of the Django admin's forms, not the API",
}


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON document that stands alone (a value or a key), not inside prose."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def contract_messages() -> dict[str, str]:
    return {name: value for name, value in vars(messages).items() if name.isupper() and isinstance(value, str)}


@pytest.fixture(scope="module")
def documented() -> set[str]:
    return set(strings(build_openapi())) | set(strings(build_asyncapi()))


@pytest.mark.parametrize(("name", "text"), contract_messages().items(), ids=list(contract_messages()))
def test_every_message_the_api_can_answer_is_in_a_document(documented, name, text):
    if text in NOT_ANSWERED:
        assert text not in documented, f"{name} is documented now: drop it from NOT_ANSWERED"
    else:
        assert text in documented, f"{name} ({text!r}) is in no API document"


# --- the README's tables --------------------------------------------------------------------------------------
def readme_rows(heading: str) -> list[list[str]]:
    """The rows of the first table under `## heading` (cells stripped; header and rule left out)."""
    section = README.read_text().split(f"\n## {heading}", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def as_readme_path(path: str) -> str:
    """`/class/{class_id}/sessions/{session_id}` → `/class/:id/sessions/:sessionId` (docs/api.md's and the
    original spec's notation: the class is `:id`, any other parameter its camelCase name)."""

    def name(match: re.Match[str]) -> str:
        first, *rest = match[1].split("_")
        return ":id" if match[1] == "class_id" else ":" + first + "".join(part.title() for part in rest)

    return re.sub(r"\{(\w+)\}", name, path)


def registered() -> dict[tuple[str, str], Any]:
    return {(method, as_readme_path(r.path)): op for r in iter_routes() for method, op in r.operations.items()}


def readme_routes() -> dict[tuple[str, str], list[str]]:
    routes = {}
    for cells in readme_rows("HTTP API"):
        method, path = re.match(r"`(\w+) (\S+)`", cells[0]).groups()  # type: ignore[union-attr]
        routes[(method, path)] = cells
    return routes


def test_the_readme_lists_every_registered_route_and_no_other():
    assert sorted(readme_routes()) == sorted(registered())


@pytest.mark.parametrize("key", sorted(readme_routes()), ids=" ".join)
def test_each_readme_row_agrees_with_the_registry(key):
    cells, operation = readme_routes()[key], registered()[key]
    _, who, success, errors = cells
    role = getattr(operation.auth, "role", None)
    if operation.auth is None:
        assert who == "anyone"
    elif role is None:
        assert who == "any user" or ("teacher" in who and "student" in who)
    else:
        assert role in who and ({"teacher", "student"} - {role}).pop() not in who, (who, role)
    assert success.split()[0] == str(operation.status)
    documented = {(str(http_status(error)), error.message) for error in operation.all_errors()}
    for status, text in re.findall(r'(\d{3}) `"([^"]+)"`', " ".join(cells[2:])):
        assert (status, text) in documented, f"README says {status} {text!r} for {key}"
    for text in re.findall(r'`"([^"]+)"`', errors):
        assert text in {message for _, message in documented}, f"README names {text!r} for {key}"


def test_the_readme_socket_tables_agree_with_the_asyncapi_document():
    document = build_asyncapi()
    client = {key.removeprefix("receive.") for key in document["operations"] if key.startswith("receive.")}
    rows = {re.match(r"`(\w+)", cells[0]).group(1): cells for cells in readme_rows("WebSocket API")}  # type: ignore[union-attr]
    assert set(rows) == client
    for name, (_, sender, _) in rows.items():
        assert document["operations"][f"receive.{name}"]["description"].startswith(f"Sent by {sender}s.")
    error = document["components"]["messages"]["server.ERROR"]["payload"]["properties"]["data"]
    texts = set(error["allOf"][1]["properties"]["message"]["enum"])
    section = README.read_text().split("\n## WebSocket API", 1)[1].split("\n## ", 1)[0]
    errors_paragraph = section.split("Errors arrive as", 1)[1].split("\n\n", 1)[0]
    named = re.findall(r'`"([^"]+)"`', errors_paragraph)
    assert named and set(named) <= texts
