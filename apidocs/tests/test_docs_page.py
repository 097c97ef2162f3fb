"""GET /docs: one public HTML page rendering the OpenAPI document (Swagger UI from the project's static files)
and listing the socket's events from the AsyncAPI document. In-process and over the wire."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

from apidocs.asyncapi import build_asyncapi
from tests.support import METHOD_NOT_ALLOWED, assert_error

ASSET = re.compile(r'(?:src|href)="(/static/[^"]+)"')


def policy(header: str) -> dict[str, set[str]]:
    return {d.split()[0]: set(d.split()[1:]) for d in header.split(";") if d.strip()}


def test_docs_is_a_public_html_page_with_its_own_policy(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response["Content-Type"] == "text/html; charset=utf-8"
    csp = policy(response["Content-Security-Policy"])
    assert csp["default-src"] == {"'self'"} and csp["script-src"] == {"'self'"} and csp["connect-src"] == {"'self'"}
    assert "'unsafe-inline'" not in str(csp) and "'unsafe-eval'" not in str(csp)
    html = response.content.decode()
    assert "<script>" not in html and "style=" not in html  # nothing inline: the policy allows none
    assert 'data-url="/openapi.json"' in html and 'href="/asyncapi.json"' in html


def test_docs_policy_is_the_pages_base_plus_data_images(client):
    sent = policy(client.get("/docs")["Content-Security-Policy"])
    expected = {name: set(values) for name, values in settings.PAGE_CSP.items()}
    expected["img-src"].add("data:")  # Swagger UI's CSS draws its icons as data: SVGs
    assert sent == expected


def test_docs_assets_are_the_projects_own_static_files(client):
    assets = ASSET.findall(client.get("/docs").content.decode())
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets) and any(a.endswith("swagger-ui.css") for a in assets)
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), asset
    assert not re.search(r'(?:src|href)="(?:https?:)?//', client.get("/docs").content.decode())  # no CDN


def test_docs_lists_every_socket_event_and_error_from_the_asyncapi_document(client):
    html = unescape(client.get("/docs").content.decode())
    document = build_asyncapi()
    for message in document["components"]["messages"].values():
        assert f"<code>{message['name']}</code>" in html
    error = document["components"]["messages"]["server.ERROR"]["payload"]["properties"]["data"]
    for text in error["allOf"][1]["properties"]["message"]["enum"]:
        assert f"<code>{text}</code>" in html
    assert "?token=&lt;JWT&gt;" in client.get("/docs").content.decode()


@pytest.mark.parametrize("path", ["/docs", "/openapi.json", "/asyncapi.json"])
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_documents_answer_other_methods_like_the_api(client, path, method):
    response = getattr(client, method)(path)
    assert_error(response, 405, METHOD_NOT_ALLOWED)
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/docs", "/openapi.json", "/asyncapi.json"])
def test_documents_need_no_token_and_revalidate(client, path):
    response = client.get(path, HTTP_AUTHORIZATION="garbage")
    assert response.status_code == 200 and "no-cache" in response["Cache-Control"]


# --- over the wire: `make run`'s server, DEBUG off, files from collectstatic through WhiteNoise -------------
@pytest.mark.wire
def test_docs_and_its_assets_over_the_wire(api):
    page = api.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = ASSET.findall(page.text)
    assert len(assets) == 5
    types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
    for asset in assets:
        assert re.search(r"\.[0-9a-f]{12}\.\w+$", asset), f"{asset} is not content-hashed"
        response = api.get(asset, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, asset
        assert response.headers["content-type"].startswith(types[asset[asset.rindex(".") :]]), asset
        assert "immutable" in response.headers["cache-control"]
    assert api.get("/openapi.json").json()["openapi"] == "3.1.0"
    served = api.get("/asyncapi.json").json()
    assert served["servers"]["this"]["host"] == api.base_url.netloc.decode()
