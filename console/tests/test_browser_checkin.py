"""Self check-in in the console (docs/console.md "Self check-in"): the teacher's projector view with its QR code
(decoded here), code, time left and live counter; a student's "Check in" field and its answers; the check-in link
opened on a phone, through the log-in. A real Chromium against a real Daphne server; each person in a browser
context of their own.
"""

from __future__ import annotations

import io
import re

import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Locator, expect

from console.tests.browser import PHONE, Console
from console.tests.test_browser import LIVE_LATENCY_MS, unique
from tests.support import Person, create_class, enrol

pytestmark = [pytest.mark.wire, pytest.mark.browser]

# A projector's screen.
PROJECTOR = {"width": 1280, "height": 720}
CODE = re.compile(r"^\d{6}$")


def classroom(console, make_person, api, *names: str, viewport=None) -> tuple[Console, str, str, list[Person]]:
    """A class with `names` enrolled, its teacher's tab on it with a session started: (tab, class id, class name,
    students)."""
    teacher = make_person("teacher")
    students = [make_person("student", unique(name)) for name in names]
    class_name = unique("Chemistry")
    class_id = create_class(api, teacher, class_name)
    enrol(api, teacher, class_id, *students)
    tab = console(viewport=viewport).log_in(teacher).open_class(class_id)
    tab.start_session()
    return tab, class_id, class_name, students


def projector(tab: Console) -> Locator:
    return tab.page.get_by_role("dialog", name=re.compile(r"^Check in"))


def open_check_in(tab: Console, *, minutes: int | None = None, late_after: int | None = None) -> Locator:
    """Open a window from the class page's settings; the projector view shows itself. Returns it."""
    page = tab.page
    if minutes is not None:
        page.get_by_role("spinbutton", name="Open for (minutes)").fill(str(minutes))
    if late_after is not None:
        page.get_by_role("spinbutton", name="Late after (minutes)").fill(str(late_after))
    page.get_by_role("button", name="Open check-in", exact=True).click()
    view = projector(tab)
    expect(view).to_be_visible()
    expect(view.locator(".projector-code")).to_have_text(CODE)
    return view


def shown_code(view: Locator) -> str:
    return (view.locator(".projector-code").text_content() or "").strip()


def counter(view: Locator) -> Locator:
    return view.locator(".projector-count")


def qr_text(view: Locator) -> str:
    """The QR code as the screen shows it, decoded from a screenshot of the view's image."""
    box = view.locator(".projector-qr")
    expect(box).to_have_attribute("data-url", re.compile("."))
    # What the screen shows: the viewport, cut to the image (an element screenshot of a fixed dialog over a
    # scrolled page would be taken from the page's coordinates).
    image = box.get_by_role("img", name="QR code of the check-in link")
    area = image.bounding_box()
    assert area is not None
    shot = Image.open(io.BytesIO(image.page.screenshot()))
    found = zxingcpp.read_barcodes(
        shot.crop((int(area["x"]), int(area["y"]), int(area["x"] + area["width"]), int(area["y"] + area["height"])))
    )
    assert [code.format for code in found] == [zxingcpp.BarcodeFormat.QRCode], found
    return found[0].text


def shown_link(view: Locator) -> str:
    """The link whose QR code the view draws (once drawn)."""
    box = view.locator(".projector-qr")
    expect(box).to_have_attribute("data-url", re.compile("."))
    link = box.get_attribute("data-url")
    assert link
    return link


def code_field(tab: Console) -> Locator:
    return tab.page.get_by_role("textbox", name="Check-in code", exact=True)


def check_in(tab: Console, code: str) -> None:
    code_field(tab).fill(code)
    tab.page.get_by_role("button", name="Check in", exact=True).click()


def result(tab: Console) -> Locator:
    return tab.page.locator(".checkin-result")


def test_a_student_checks_in_with_the_projected_code_and_the_counter_moves(console, make_person, api):
    tab, class_id, class_name, (ana, ben) = classroom(console, make_person, api, "Ana", "Ben", viewport=PROJECTOR)
    student = console(viewport=PHONE).log_in(ana).open_class(class_id)
    expect(student.status()).to_have_text("Session in progress · Not marked yet")
    expect(code_field(student)).to_have_count(0)  # no window yet

    view = open_check_in(tab)
    expect(view.get_by_role("heading", level=2)).to_have_text(f"Check in · {class_name}")
    expect(counter(view)).to_have_text("0 of 2 checked in")
    expect(view).to_contain_text(re.compile(r"Closes in (10:00|9:[0-5]\d)"))
    # The QR code holds the link that checks in with the code on the screen (CHECKIN_CODE `url`).
    code = shown_code(view)
    link = qr_text(view)
    assert link == shown_link(view)
    origin = tab.traffic.origin
    assert link == f"{origin}/#/check-in/{class_id}/{code}", link

    # The student's page shows the field by itself (CHECKIN_OPENED); a wrong code is answered in words.
    expect(code_field(student)).to_be_visible()
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    check_in(student, wrong)
    expect(result(student)).to_have_text("Invalid or expired code")
    expect(code_field(student)).to_have_attribute("aria-invalid", "true")
    check_in(student, "12ab")
    expect(student.page.get_by_text("Check-in code: the 6 digits shown by your teacher.")).to_be_visible()

    # The code from the projector: the student is present, and the teacher's counter moves within 1 s of the click.
    code = shown_code(view)
    student.page.evaluate(
        "() => document.addEventListener('click', () => { window.__clickedAt = Date.now(); }, true)"
    )
    tab.page.evaluate(
        "() => { window.__counts = []; const box = document.querySelector('.projector-count');"
        " new MutationObserver(() => window.__counts.push([box.textContent, Date.now()]))"
        ".observe(box, {childList: true, characterData: true, subtree: true}); }"
    )
    code_field(student).fill(code)
    student.screenshot("checkin-student-phone")
    student.page.get_by_role("button", name="Check in", exact=True).click()
    expect(counter(view)).to_have_text("1 of 2 checked in")
    clicked_at = student.page.evaluate("window.__clickedAt")
    moved_at = tab.page.evaluate("window.__counts.filter(([text]) => text === '1 of 2 checked in').pop()[1]")
    assert moved_at - clicked_at < LIVE_LATENCY_MS, f"{moved_at - clicked_at} ms"
    expect(result(student)).to_have_text("Checked in · Present")
    expect(student.status()).to_have_text("Session in progress · Present")
    expect(code_field(student)).to_have_count(0)  # nothing more to do
    expect(tab.mark_button(ana.name, "Present")).to_have_attribute("aria-pressed", "true")

    assert tab.accessibility_problems() == []
    assert student.accessibility_problems() == []
    tab.screenshot("checkin-projector", full_page=False)
    student.screenshot("checkin-student-done")

    # "Full screen" makes the view the whole screen (the box inside the dialog: a modal dialog cannot be).
    full = view.get_by_role("button", name="Full screen", exact=True)
    full.click()
    expect(full).to_have_attribute("aria-pressed", "true")
    assert tab.page.evaluate("document.fullscreenElement?.className") == "projector-screen"
    expect(counter(view)).to_be_visible()
    full.click()
    expect(full).to_have_attribute("aria-pressed", "false")

    # A student the teacher marks counts too (present or late); Escape leaves the view, the window stays open.
    tab.page.keyboard.press("Escape")
    expect(view).to_be_hidden()
    tab.mark(ben.name, "Late")
    expect(tab.page.locator(".checkin-state")).to_contain_text("2 of 2 checked in")
    tab.page.get_by_role("button", name="Show projector view", exact=True).click()
    expect(counter(view)).to_have_text("2 of 2 checked in")
    view.get_by_role("button", name="Exit", exact=True).click()
    expect(view).to_be_hidden()
    expect(tab.page.get_by_role("button", name="Show projector view", exact=True)).to_be_focused()

    # "Close check-in": the student's field goes (CHECKIN_CLOSED) and the settings come back.
    tab.page.get_by_role("button", name="Close check-in", exact=True).click()
    expect(tab.page.get_by_role("button", name="Open check-in", exact=True)).to_be_visible()
    expect(result(student)).to_have_text("Checked in · Present")  # her own outcome stays


def test_every_refusal_is_shown_in_words(console, make_person, api):
    tab, class_id, _, (ana, ben, chloe) = classroom(console, make_person, api, "Ana", "Ben", "Chloé")
    # The settings are checked in the page, each message naming its field.
    page = tab.page
    page.get_by_role("spinbutton", name="Open for (minutes)").fill("0")
    page.get_by_role("spinbutton", name="Late after (minutes)").fill("241")
    page.get_by_role("button", name="Open check-in", exact=True).click()
    expect(page.get_by_text("Open for (minutes): a whole number from 1 to 240.")).to_be_visible()
    expect(page.get_by_text("Late after (minutes): a whole number from 0 to 240, or empty.")).to_be_visible()
    expect(page.get_by_role("spinbutton", name="Open for (minutes)")).to_be_focused()
    expect(projector(tab)).to_have_count(0)
    page.get_by_role("spinbutton", name="Open for (minutes)").fill("5")
    page.get_by_role("spinbutton", name="Late after (minutes)").fill("")

    # Marked by the teacher first: a check-in never overwrites.
    tab.mark(ben.name, "Absent")
    view = open_check_in(tab)
    expect(view).to_contain_text(re.compile(r"Closes in (5:00|4:[0-5]\d)"))
    code = shown_code(view)
    link = shown_link(view)
    view.get_by_role("button", name="Exit", exact=True).click()

    benny = console(viewport=PHONE).log_in(ben).open_class(class_id)
    expect(benny.status()).to_have_text("Session in progress · Absent")
    expect(code_field(benny)).to_have_count(0)  # a marked student has nothing to check in
    ana_tab = console(viewport=PHONE).log_in(ana).open_class(class_id)
    for attempt in range(5):
        check_in(ana_tab, f"{(int(code) + 1 + attempt) % 1_000_000:06d}")
        expect(result(ana_tab)).to_have_text("Invalid or expired code")
    check_in(ana_tab, code)  # even the right one, for the rest of the window
    expect(result(ana_tab)).to_have_text("Too many attempts")
    expect(code_field(ana_tab)).to_have_count(0)  # no more tries in this window
    expect(tab.mark_button(ana.name, "Present")).to_have_attribute("aria-pressed", "false")

    # After the window closes, a code (from the link of a phone) is answered "Check-in is not open".
    tab.page.get_by_role("button", name="Close check-in", exact=True).click()
    expect(tab.page.get_by_role("button", name="Open check-in", exact=True)).to_be_visible()
    chloe_tab = console(viewport=PHONE).log_in(chloe)
    chloe_tab.page.goto(link)
    expect(result(chloe_tab)).to_have_text("Check-in is not open")
    assert chloe_tab.accessibility_problems() == []


def test_the_link_on_a_phone_goes_through_the_login_and_checks_in(console, make_person, api):
    tab, class_id, class_name, (ana,) = classroom(console, make_person, api, "Ana")
    view = open_check_in(tab, late_after=0)  # every check-in is late from the start
    link = qr_text(view)
    code = link.rsplit("/", 1)[1]

    phone = console(viewport=PHONE)
    page = phone.page
    page.goto(link)
    expect(page.get_by_role("button", name="Log in", exact=True)).to_be_visible()
    assert code not in page.url  # the code left the address bar at once
    page.get_by_role("textbox", name="Email", exact=True).fill(ana.email)
    page.get_by_label("Password", exact=True).fill(ana.password)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", name=class_name, level=1)).to_be_visible()
    expect(result(phone)).to_have_text("Checked in · Late")
    expect(phone.status()).to_have_text("Session in progress · Late")
    assert page.url.endswith(f"/#/class/{class_id}"), page.url
    expect(counter(view)).to_have_text("1 of 1 checked in")
    # A reload checks nobody in twice: the code is gone from the tab.
    page.reload()
    expect(phone.status()).to_have_text("Session in progress · Late")
    expect(result(phone)).to_have_count(1)
    expect(result(phone)).to_be_hidden()


def test_the_link_opened_logged_in_checks_in_and_a_teacher_is_told(console, make_person, api):
    tab, class_id, _, (ana,) = classroom(console, make_person, api, "Ana")
    view = open_check_in(tab)
    link = shown_link(view)
    phone = console(viewport=PHONE).log_in(ana)
    phone.page.goto(link)
    expect(result(phone)).to_have_text("Checked in · Present")
    assert phone.page.url.endswith(f"/#/class/{class_id}")
    # Closed from the projector view: it stays, with the final count, until the teacher leaves it.
    view.get_by_role("button", name="Close check-in", exact=True).click()
    expect(view.locator(".projector-code")).to_have_text("Check-in closed")
    expect(counter(view)).to_have_text("1 of 1 checked in")
    expect(view.get_by_role("img", name="QR code of the check-in link")).to_be_hidden()
    view.get_by_role("button", name="Exit", exact=True).click()
    expect(tab.page.get_by_role("button", name="Open check-in", exact=True)).to_be_focused()

    other = console().log_in(make_person("teacher"))
    other.page.goto(link)
    expect(other.alert()).to_contain_text("check-in link, for students")
    expect(other.page.get_by_role("heading", name="Your classes", level=1)).to_be_visible()


def test_a_reload_keeps_the_window_and_the_code_rotates(console, make_person, api):
    tab, class_id, _, (ana,) = classroom(console, make_person, api, "Ana")
    tab.page.get_by_role("spinbutton", name="New code every (seconds)").fill("10")
    view = open_check_in(tab)
    first = shown_code(view)
    student = console(viewport=PHONE).log_in(ana).open_class(class_id)
    expect(code_field(student)).to_be_visible()

    # The teacher's page after a reload: the window open (GET /attendance/active), its code again (CHECKIN_CODE).
    tab.page.reload()
    expect(tab.page.locator(".checkin-state")).to_contain_text(re.compile(r"Open until .* · 0 of 1 checked in"))
    tab.page.get_by_role("button", name="Show projector view", exact=True).click()
    expect(view.locator(".projector-code")).to_have_text(CODE)
    # Within the 10 s rotation a new code replaces the shown one, the QR code with it.
    expect(view.locator(".projector-code")).not_to_have_text(first, timeout=15_000)
    second = shown_code(view)
    expect(view.locator(".projector-qr")).to_have_attribute("data-url", re.compile(f"/{second}$"))
    assert qr_text(view).endswith(f"/{second}")
    # The student's page, reloaded, still shows the field (GET /class/:id/check-in).
    student.page.reload()
    expect(code_field(student)).to_be_visible()
    check_in(student, second)
    expect(result(student)).to_have_text("Checked in · Present")
