"""Static files served by the project itself, over the wire from `python -m server.serve` (what
`make run` runs): WhiteNoise with hashed names, compression and cache headers; the console page and its
modules; errors stay JSON."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import DaphneServer
from tests.support import assert_error, own_wire_server

pytestmark = pytest.mark.wire

FOREVER = "max-age=315360000, public, immutable"
HASHED = re.compile(r"\.[0-9a-f]{12}\.(css|js|svg)$")


def test_the_admin_stylesheet_is_served(api):
    response = api.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/css")
    assert "body" in response.text
    assert "max-age=" in response.headers["Cache-Control"]


def test_the_admin_pages_link_hashed_files_cached_for_good_and_compressed(api):
    login = api.get("/admin/login/")
    assert login.status_code == 200
    href = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', login.text)
    assert href, login.text[:2000]
    response = api.get(href.group(1), headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == FOREVER
    assert response.headers["Content-Encoding"] == "gzip"
    assert "body" in response.text  # httpx decompressed it
    assert response.headers["Vary"] == "Accept-Encoding"


def test_the_console_page_and_its_modules(api):
    page = api.get("/")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "no-cache" in page.headers["Cache-Control"]
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assets = re.findall(r'(?:src|href)="(/static/console/[^"]+)"', page.text)
    assert {a.rsplit(".", 1)[-1] for a in assets} == {"js", "css", "svg"}, assets
    assert all(HASHED.search(a) for a in assets), assets
    assert "http://" not in page.text and "https://" not in page.text  # nothing from another host

    # Each module's imports were rewritten to hashed names, so a page never mixes two deploys' modules.
    seen, queue = set(), [a for a in assets if a.endswith(".js")]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        module = api.get(path)
        assert module.status_code == 200, path
        assert module.headers["Content-Type"].startswith("text/javascript"), module.headers["Content-Type"]
        assert module.headers["Cache-Control"] == FOREVER
        for target in re.findall(r'from\s*"(\./[^"]+)"', module.text):
            assert HASHED.search(target), (path, target)
            queue.append(path.rsplit("/", 1)[0] + "/" + target.removeprefix("./"))
    assert len(seen) >= 7, seen  # app, api, auth, dom, live, student, teacher, ui


def test_unknown_static_files_and_wrong_methods_stay_json(api):
    assert_error(api.get("/static/console/nope.js"), 404, "Not found")
    assert_error(api.get("/static/"), 404, "Not found")
    assert_error(api.post("/", json={}), 405, "Method not allowed")
    assert_error(api.get("/index.html"), 404, "Not found")


@pytest.fixture(scope="module")
def debug_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    """`make run` as it is by default: DEBUG on, files straight from the apps (no collectstatic needed)."""
    tmp_dir = tmp_path_factory.mktemp("debug")
    with own_wire_server(tmp_dir, {"DEBUG": "1", "STATIC_ROOT": str(tmp_dir / "empty")}) as server:
        yield server


def test_static_files_in_development_without_collectstatic(debug_server):
    with httpx.Client(base_url=debug_server.http_url, timeout=10) as client:
        css = client.get("/static/admin/css/base.css")
        assert css.status_code == 200 and "body" in css.text
        page = client.get("/")
        assert page.status_code == 200
        assert '/static/console/app.js"' in page.text  # unhashed in development: edits show on reload
        module = client.get("/static/console/app.js")
        assert module.status_code == 200 and 'from "./api.js"' in module.text
        assert_error(client.get("/static/console/nope.js"), 404, "Not found")
