"""The browser for every browser test (the console's and /docs'): Debian's Chromium by path through Playwright,
one per test module. A pytest plugin (the root conftest registers it); Playwright is imported only when a test
asks for the browser."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from live.tests.services_available import require_service

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Chromium flags that work on this machine (no sandbox as root, no network but loopback).
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    found = shutil.which(CHROMIUM) if not os.path.isabs(CHROMIUM) else CHROMIUM
    return found if found and os.path.exists(found) else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A Chromium for the test module (skipped, or with REQUIRE_SERVICES=1 failed, when it is not installed)."""
    path = chromium_path()
    require_service("Chromium", CHROMIUM, None if path else FileNotFoundError("apt-get install -y chromium"))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()
