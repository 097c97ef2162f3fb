"""/docs in a real browser (Debian's Chromium through Playwright), on `make run`'s server with DEBUG off:
Swagger UI renders every registered operation from the project's own files, under the page's
Content-Security-Policy, with no request to any other host, and "Try it out" calls the API with a token."""

from __future__ import annotations

import pytest

from common.api import iter_routes
from console.tests.browser import SCREENSHOTS, update_screenshots

pytestmark = [pytest.mark.wire, pytest.mark.browser]


def test_docs_renders_every_operation_and_tries_one(browser, wire_server, make_person):
    from playwright.sync_api import expect

    origin = wire_server.http_url
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(origin + "/docs")
        operations = [(m, r.path) for r in iter_routes() for m in r.operations]
        expect(page.locator(".opblock")).to_have_count(len(operations), timeout=20_000)
        for method, path in operations:
            block = page.locator(f".opblock-{method.lower()}", has=page.locator(f'[data-path="{path}"]'))
            expect(block).to_have_count(1)
        expect(page.get_by_role("heading", name="WebSocket events")).to_be_visible()
        expect(page.get_by_role("rowheader", name="ATTENDANCE_MARKED").first).to_be_visible()

        # Authorize with a real token, then "Try it out" on GET /auth/me: the page calls its own API.
        teacher = make_person("teacher")
        page.get_by_role("button", name="Authorize").first.click()
        page.locator(".modal-ux input[type=text]").fill(teacher.token)
        page.locator(".modal-ux button.authorize").click()  # labelled "Apply credentials"
        page.locator(".modal-ux button.btn-done").click()
        me = page.locator(".opblock-get", has=page.locator('[data-path="/auth/me"]'))
        me.locator(".opblock-summary").click()
        me.get_by_role("button", name="Try it out").click()
        me.get_by_role("button", name="Execute").click()
        expect(me.locator(".live-responses-table tbody .response-col_status")).to_have_text("200", timeout=10_000)
        expect(me.locator(".live-responses-table")).to_contain_text(teacher.email)
        if update_screenshots():  # docs/screenshots/api-docs.png, only when asked (runs leave the tree clean)
            me.locator(".opblock-summary").click()
            page.screenshot(path=str(SCREENSHOTS / "api-docs.png"))
    finally:
        context.close()
    assert problems == []  # a CSP violation is a console error too
    assert [url for url in requests if not url.startswith(origin + "/")] == []
    assert origin + "/openapi.json" in requests and origin + "/auth/me" in requests
