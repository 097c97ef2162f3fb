"""Console fixtures: a context per person, checks after every test (the browser itself: tests/browsers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from console.tests.browser import Console, new_console


@pytest.fixture
def console(browser: Any, wire_server: Any) -> Iterator[Any]:
    """`console()` → a new person's tab (a browser context of its own) on the wire server.

    After the test: no page error, no CSP violation, and nothing loaded from any other host."""
    contexts: list[Any] = []

    def open_(origin: str | None = None, **options: Any) -> Console:
        return new_console(browser, origin or wire_server.http_url, contexts, **options)

    yield open_
    problems = []
    for context, traffic in contexts:
        problems += [f"foreign URL {url}" for url in traffic.foreign()]
        problems += [f"CSP violation: {text}" for text in traffic.csp_violations]
        problems += [f"page error: {text}" for text in traffic.page_errors]
        context.close()
    assert not problems, problems
