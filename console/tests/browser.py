"""Playwright helpers for the console's browser tests: Debian's Chromium by path, one browser per module,
a fresh context per person, every request and socket recorded so that tests can prove the console talks
to its own server only.

Locators are role-based with the accessible names of docs/console.md "Accessible names".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Locator, Page, Route, expect

from tests.support import Person

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1000, "height": 760}
# axe-core's impacts that fail a page (docs/console.md "Accessibility").
BLOCKING_IMPACTS = ("serious", "critical")
_axe = Axe()  # axe-core as bundled in the axe-playwright-python wheel: nothing is fetched


def update_screenshots() -> bool:
    return os.environ.get("UPDATE_SCREENSHOTS") == "1"


class HeldRequests:
    """The page's requests to `pattern`, held (neither sent nor answered) until the test lets them go."""

    def __init__(self, page: Page, pattern: str) -> None:
        self.page, self.pattern = page, pattern
        self.routes: list[Route] = []
        self._handler = self._hold  # one handler object, for unroute
        page.route(pattern, self._handler)

    def _hold(self, route: Route) -> None:
        self.routes.append(route)

    def first(self, timeout_ms: int = 5_000) -> Route:
        """The first held request, once the page has made it."""
        for _ in range(timeout_ms // 100):
            if self.routes:
                break
            self.page.wait_for_timeout(100)
        assert self.routes, f"the page did not ask for {self.pattern}"
        return self.routes[0]

    def release(self, *, answered: tuple[Route, ...] = ()) -> None:
        """Send every held request the test has not answered itself, then stop holding (after `unroute`,
        Playwright refuses to continue a held request: "Route is already handled")."""
        for route in self.routes:
            if route not in answered:
                route.continue_()
        self.page.unroute(self.pattern, self._handler)


@dataclass
class Traffic:
    """What one browser context asked for: every request URL, every socket URL, CSP reports, page errors."""

    origin: str
    requests: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def foreign(self) -> list[str]:
        ws_origin = "ws" + self.origin.removeprefix("http")
        own = (self.origin + "/", ws_origin + "/", "blob:" + self.origin + "/")
        return [url for url in self.requests + self.sockets if not url.startswith(own)]


class Console:
    """One person's browser tab on the console."""

    def __init__(self, page: Page, traffic: Traffic) -> None:
        self.page = page
        self.traffic = traffic

    # --- reading ---
    def status(self) -> Locator:
        return self.page.get_by_role("status")

    def row(self, name: str) -> Locator:
        return self.page.get_by_role("row", name=name, exact=True)

    def mark_button(self, name: str, mark: str) -> Locator:
        return self.row(name).get_by_role("button", name=mark, exact=True)

    def alert(self) -> Locator:
        return self.page.get_by_role("alert")

    def connection(self) -> Locator:
        """The header's connection indicator (its value: "Connected", "Reconnecting…", ...)."""
        return self.page.locator(".indicator-connection dd")

    def session_state(self) -> Locator:
        """The session indicator of a class page (its value: "Live", "Ended", "Not live")."""
        return self.page.locator(".indicator-session dd")

    def connected(self, timeout: float = 10_000) -> None:
        expect(self.connection()).to_have_text("Connected", timeout=timeout)

    def record_status_texts(self) -> None:
        """Keep every text the role=status region shows from now on (read with `status_texts`)."""
        self.page.evaluate(
            "() => { window.__statusTexts = []; const seen = () => {"
            " const box = document.querySelector('[role=status]');"
            " if (box) window.__statusTexts.push(box.textContent); };"
            " seen(); new MutationObserver(seen).observe(document.getElementById('main'),"
            " {childList: true, characterData: true, subtree: true}); }"
        )

    def status_texts(self) -> list[str]:
        return list(self.page.evaluate("window.__statusTexts"))

    def accessibility_problems(self) -> list[str]:
        """axe-core's serious and critical violations on the page as it is now."""
        results = _axe.run(self.page)
        return [
            f"{self.page.url}: {v['id']} ({v['impact']}): {v['help']}: {node['html']} {node.get('failureSummary')}"
            for v in results.response["violations"]
            if v["impact"] in BLOCKING_IMPACTS
            for node in v["nodes"]
        ]

    # --- doing ---
    def open(self, fragment: str = "") -> Console:
        self.page.goto("/" + fragment)
        return self

    def log_in(self, person: Person) -> Console:
        self.open()
        self.page.get_by_role("textbox", name="Email", exact=True).fill(person.email)
        self.page.get_by_label("Password", exact=True).fill(person.password)
        self.page.get_by_role("button", name="Log in", exact=True).click()
        expect(self.page.get_by_role("heading", name="Your classes", level=1)).to_be_visible()
        self.connected()
        return self

    def open_class(self, class_id: str) -> Console:
        self.page.goto(f"/#/class/{class_id}")
        expect(self.status()).not_to_have_text(re.compile(r"^(Connecting…)?$"))
        return self

    def create_class(self, name: str) -> str:
        self.page.get_by_role("textbox", name="Class name", exact=True).fill(name)
        self.page.get_by_role("button", name="Create class", exact=True).click()
        expect(self.page.get_by_role("heading", name=name, level=1)).to_be_visible()
        match = re.search(r"#/class/([0-9a-f]{24})$", self.page.url)
        assert match, self.page.url
        return match.group(1)

    def enrol(self, name: str) -> None:
        self.page.get_by_role("searchbox", name="Search students", exact=True).fill(name)
        matches = self.page.get_by_role("list", name="Matching students")
        matches.get_by_role("button", name=f"Add {name}", exact=True).click()
        enrolled = self.page.get_by_role("list", name="Enrolled students")
        expect(enrolled.get_by_text(name, exact=True)).to_be_visible()

    def start_session(self) -> None:
        self.page.get_by_role("button", name="Start session", exact=True).click()
        expect(self.page.get_by_role("button", name="End session", exact=True)).to_be_visible()
        expect(self.status()).to_contain_text("Session live")

    def mark(self, name: str, mark: str) -> None:
        self.mark_button(name, mark).click()
        expect(self.mark_button(name, mark)).to_have_attribute("aria-pressed", "true")

    def end_session(self) -> None:
        self.page.get_by_role("button", name="End session", exact=True).click()
        dialog = self.page.get_by_role("dialog")
        dialog.get_by_role("button", name="End session", exact=True).click()
        expect(self.status()).to_contain_text("Session ended")

    def screenshot(self, name: str, until: Locator | None = None, *, full_page: bool = True) -> None:
        """Refresh docs/screenshots/<name>.png, only with UPDATE_SCREENSHOTS=1 (normal runs leave the tree clean):
        the whole page, or from the top down to the end of `until`, or (`full_page=False`) the screen as it is,
        e.g. a full-screen dialog."""
        if not update_screenshots():
            return
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = str(SCREENSHOTS / f"{name}.png")
        if until is None:
            self.page.screenshot(path=path, full_page=full_page)
            return
        box = until.bounding_box()
        assert box is not None
        width = self.page.viewport_size["width"] if self.page.viewport_size else 1000
        clip = {"x": 0, "y": 0, "width": width, "height": box["y"] + box["height"] + 16}
        self.page.screenshot(path=path, full_page=True, clip=clip)


def new_console(
    browser: Browser, origin: str, contexts: list[Any], *, viewport: dict[str, int] | None = None
) -> Console:
    traffic = Traffic(origin)
    context = browser.new_context(base_url=origin, viewport=viewport or DESKTOP, accept_downloads=True)
    context.set_default_timeout(10_000)
    contexts.append((context, traffic))
    context.on("request", lambda request: traffic.requests.append(request.url))
    page = context.new_page()
    page.on("websocket", lambda socket: traffic.sockets.append(socket.url))
    page.on("pageerror", lambda error: traffic.page_errors.append(str(error)))
    page.on(
        "console",
        lambda message: traffic.csp_violations.append(message.text)
        if "Content Security Policy" in message.text
        else None,
    )
    return Console(page, traffic)
