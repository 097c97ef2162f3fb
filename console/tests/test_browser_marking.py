"""Marking as teachers take it, in the console (docs/console.md "Marking"): four statuses with keys, clearing by
clicking the current status, remarks, "Mark all present" with its undo, and corrections of a past session with its
change log. A real Chromium against a real Daphne server; teacher and students in separate browser contexts.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from console.tests.browser import Console
from console.tests.test_browser import unique
from tests.support import Person, create_class, enrol

pytestmark = [pytest.mark.wire, pytest.mark.browser]

STATUSES = ("Present", "Absent", "Late", "Excused")


def pressed(tab: Console, name: str) -> list[str]:
    """The statuses of `name`'s row whose button is pressed (none, or one)."""
    return [s for s in STATUSES if tab.mark_button(name, s).get_attribute("aria-pressed") == "true"]


def expect_only(tab: Console, name: str, status: str | None) -> None:
    for s in STATUSES:
        expect(tab.mark_button(name, s)).to_have_attribute("aria-pressed", "true" if s == status else "false")


def classroom(console, make_person, api, names: tuple[str, ...]) -> tuple[Console, str, list[Person]]:
    teacher = make_person("teacher")
    students = [make_person("student", unique(name)) for name in names]
    class_id = create_class(api, teacher, unique("Geography"))
    enrol(api, teacher, class_id, *students)
    tab = console().log_in(teacher).open_class(class_id)
    tab.start_session()
    return tab, class_id, students


def remark(tab: Console, name: str):
    return tab.page.get_by_role("textbox", name=f"Remark for {name}", exact=True)


def test_four_statuses_keys_clear_and_remarks(console, make_person, api):
    tab, class_id, (ana, ben, chloe) = classroom(console, make_person, api, ("Ana", "Ben", "Chloé"))
    student = console().log_in(ana).open_class(class_id)
    expect(student.status()).to_have_text("Session in progress · Not marked yet")

    # A click sets a status; the student sees late and excused live too.
    tab.mark(ana.name, "Late")
    expect_only(tab, ana.name, "Late")
    expect(student.status()).to_have_text("Session in progress · Late")
    tab.mark(ana.name, "Excused")
    expect(student.status()).to_have_text("Session in progress · Excused")

    # Keys on a focused row: P, L, E, A.
    tab.mark_button(ben.name, "Present").focus()
    for key, status in (("l", "Late"), ("A", "Absent"), ("p", "Present"), ("e", "Excused")):
        tab.page.keyboard.press(key)
        expect_only(tab, ben.name, status)
    tab.mark_button(chloe.name, "Absent").focus()
    tab.page.keyboard.press("l")
    expect_only(tab, chloe.name, "Late")
    expect(tab.status()).to_contain_text("Present 0 · Late 1 · Excused 2 · Absent 0 · Not marked 0 of 3")

    # Clicking the current status clears it (ATTENDANCE_CLEARED): the student is unmarked again.
    tab.mark_button(ana.name, "Excused").click()
    expect_only(tab, ana.name, None)
    expect(student.status()).to_have_text("Session in progress · Not marked yet")
    expect(tab.status()).to_contain_text("Not marked 1 of 3")

    # A remark goes with the current status, on Enter; typing P/L/E/A in it marks nobody.
    tab.mark(ana.name, "Late")
    remark(tab, ana.name).fill("Bus was ")
    remark(tab, ana.name).press_sequentially("late, please excuse")  # keys l, a, e, p typed in the field
    remark(tab, ana.name).press("Enter")
    expect_only(tab, ana.name, "Late")
    expect(remark(tab, ana.name)).to_have_value("Bus was late, please excuse")
    tab.page.get_by_role("heading", name="Attendance", exact=True).click()  # leaves the field
    # The remark is held by the server (GET /attendance/active `marks`): a reload shows it again.
    tab.page.reload()
    expect(remark(tab, ana.name)).to_have_value("Bus was late, please excuse")
    expect_only(tab, ana.name, "Late")
    assert tab.accessibility_problems() == []
    tab.screenshot("teacher-four-statuses", until=tab.page.get_by_role("region", name="Attendance"))

    tab.end_session()
    expect(tab.status()).to_have_text("Session ended · Present 0 · Late 2 · Excused 1 · Absent 0 · Total 3")
    expect(student.status()).to_have_text("Session ended · Late")
    history = student.page.get_by_role("list", name="Past sessions")
    expect(history).to_contain_text("Late")
    expect(history).to_contain_text("Remark: Bus was late, please excuse")  # her own remark, in her history


def test_mark_all_present_fills_blanks_and_can_be_undone(console, make_person, api):
    tab, class_id, (ana, ben, chloe) = classroom(console, make_person, api, ("Ana", "Ben", "Chloé"))
    student = console().log_in(ben).open_class(class_id)
    expect(student.status()).to_have_text("Session in progress · Not marked yet")
    tab.mark(ana.name, "Absent")

    tab.page.get_by_role("button", name="Mark all present", exact=True).click()
    expect_only(tab, ben.name, "Present")
    expect_only(tab, chloe.name, "Present")
    expect_only(tab, ana.name, "Absent")  # marks already made are never overwritten
    expect(student.status()).to_have_text("Session in progress · Present")
    expect(tab.status()).to_contain_text("Present 2 · Absent 1 · Not marked 0 of 3")
    expect(tab.page.get_by_role("button", name="Mark all present", exact=True)).to_be_disabled()

    tab.page.get_by_role("button", name="Undo", exact=True).click()
    expect_only(tab, ben.name, None)
    expect_only(tab, chloe.name, None)
    expect_only(tab, ana.name, "Absent")
    expect(student.status()).to_have_text("Session in progress · Not marked yet")
    expect(tab.status()).to_contain_text("Present 0 · Absent 1 · Not marked 2 of 3")
    expect(tab.page.get_by_role("button", name="Undo", exact=True)).to_have_count(0)

    # A mark made after the MARK_ALL is kept by its undo.
    tab.page.get_by_role("button", name="Mark all present", exact=True).click()
    expect_only(tab, chloe.name, "Present")
    tab.mark(chloe.name, "Late")
    tab.page.get_by_role("button", name="Undo", exact=True).click()
    expect_only(tab, ben.name, None)
    expect_only(tab, chloe.name, "Late")


def test_a_past_session_is_corrected_and_its_change_log_shown(console, make_person, api):
    tab, class_id, (ana, ben) = classroom(console, make_person, api, ("Ana", "Ben"))
    tab.mark(ana.name, "Present")
    tab.end_session()  # Ben: absent by DONE
    page = tab.page
    sessions = page.get_by_role("list", name="Past sessions")
    expect(sessions).to_contain_text("1 present, 1 absent of 2")
    sessions.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("session of")
    expect_only(tab, ana.name, "Present")
    expect_only(tab, ben.name, "Absent")
    changes = page.get_by_role("list", name="Changes")
    expect(changes.get_by_role("listitem")).to_have_count(2)
    expect(changes).to_contain_text(re.compile(r"Present · teacher by you"))
    expect(changes).to_contain_text(re.compile(r"Absent · done"))

    # A status click corrects the record (PATCH), at once, and the log shows the correction.
    tab.mark(ben.name, "Late")
    expect_only(tab, ben.name, "Late")
    expect(changes.get_by_role("listitem")).to_have_count(3)
    expect(changes.get_by_role("listitem").last).to_contain_text("Late")
    expect(changes.get_by_role("listitem").last).to_contain_text("correction by you")
    expect(page.get_by_role("main")).to_contain_text("Present 1 · Late 1 · Absent 0 · Total 2")
    # A remark, with the key on the row afterwards.
    remark(tab, ben.name).fill("Doctor's note")
    remark(tab, ben.name).press("Enter")
    expect(changes.get_by_role("listitem")).to_have_count(4)
    expect(changes.get_by_role("listitem").last).to_contain_text("Doctor's note")
    tab.mark_button(ben.name, "Late").focus()
    page.keyboard.press("e")
    expect_only(tab, ben.name, "Excused")
    expect(changes.get_by_role("listitem")).to_have_count(5)
    assert tab.accessibility_problems() == []

    # The report and the student's history show the corrected status and the new rate at once.
    page.get_by_role("link", name=re.compile("Geography")).click()
    report = page.get_by_role("region", name="History").get_by_role("table")
    expect(report.get_by_role("row").filter(has_text=ben.name)).to_contain_text("—")  # excused only: no rate
    expect(report.get_by_role("row").filter(has_text=ana.name)).to_contain_text("100 %")
    student = console().log_in(ben).open_class(class_id)
    history = student.page.get_by_role("list", name="Past sessions")
    expect(history).to_contain_text("Excused")
    expect(history).to_contain_text("Remark: Doctor's note")
