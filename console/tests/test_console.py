"""The console page in-process: what `/` answers, with which headers (the browser tests drive it for real)."""

from __future__ import annotations

from django.conf import settings

from tests.support import METHOD_NOT_ALLOWED, assert_error


def directives(header: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in header.split(";") if d.strip()}


def test_the_page_and_its_policy(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    policy = response["Content-Security-Policy"]
    for directive in ("default-src 'self'", "connect-src 'self'", "script-src 'self'", "style-src 'self'",
                      "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in policy, policy
    assert "unsafe" not in policy
    assert "no-cache" in response["Cache-Control"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    html = response.content.decode()
    assert '<script type="module" src="/static/console/app.js">' in html
    assert "<script>" not in html and "style=" not in html  # nothing inline for the policy to refuse


def test_head_is_answered_and_other_methods_are_the_api_405(client):
    assert client.head("/").status_code == 200
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)("/")
        assert_error(response, 405, METHOD_NOT_ALLOWED)
        assert response["Allow"] == "GET, HEAD"  # like every API route's 405


def test_the_policy_is_the_pages_base_as_it_is(client):
    assert directives(client.get("/")["Content-Security-Policy"]) == settings.PAGE_CSP


def test_only_the_page_carries_the_policy(client):
    # The JSON API keeps its own headers: the console's policy is the console's.
    response = client.get("/auth/me")
    assert response.status_code == 401
    assert "Content-Security-Policy" not in response


def test_other_paths_stay_the_json_404(client):
    assert_error(client.get("/console"), 404, "Not found")
    assert_error(client.get("/index.html"), 404, "Not found")
