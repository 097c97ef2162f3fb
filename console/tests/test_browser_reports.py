"""Reports and roster a school uses, in the console (docs/console.md "Roster and settings", "Reports and charts"):
students imported from a pasted list and from a CSV file, a student removed, the class renamed and its at-risk
settings, the date range and the Excel download, the charts with their text alternatives, the students at risk
with the reason, and a student's own strip, rate and notice. A real Chromium against a real Daphne server.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from console.tests.browser import PHONE, SCREENSHOTS, Console, update_screenshots
from console.tests.test_browser import unique
from tests.support import Person, assert_ok, create_class, enrol

pytestmark = [pytest.mark.wire, pytest.mark.browser]


def import_form(tab: Console):
    return tab.page.get_by_role("form", name="Import students")


def enrolled(tab: Console):
    return tab.page.get_by_role("list", name="Enrolled students")


def class_page(console, make_person, api, names: tuple[str, ...] = ()) -> tuple[Console, str, Person, list[Person]]:
    teacher = make_person("teacher")
    students = [make_person("student", unique(name)) for name in names]
    class_id = create_class(api, teacher, unique("Biology"))
    enrol(api, teacher, class_id, *students)
    tab = console().log_in(teacher).open_class(class_id)
    return tab, class_id, teacher, students


def test_import_students_from_a_pasted_list_and_from_a_csv_file(console, make_person, api):
    tab, class_id, teacher, _ = class_page(console, make_person, api)
    ana, ben, chloe = (make_person("student", unique(n)) for n in ("Ana", "Ben", "Chloé"))
    colleague = make_person("teacher")
    form = import_form(tab)
    expect(enrolled(tab)).to_have_count(0)

    # Nothing to import: the field says so, nothing is sent.
    form.get_by_role("button", name="Import", exact=True).click()
    emails = form.get_by_role("textbox", name="Emails to import", exact=True)
    expect(emails).to_have_attribute("aria-invalid", "true")
    expect(form).to_contain_text("paste at least one address")

    # A list pasted from a mail client and a spreadsheet: names, angle brackets, commas, lines, any case.
    emails.fill(f"{ana.name} <{ana.email.upper()}>, {ben.email}\n nobody-{ana.id}@example.org;{colleague.email}\n")
    form.get_by_role("button", name="Import", exact=True).click()
    expect(form).to_contain_text("Import: 2 added · 0 already enrolled · 1 not found · 1 not a student")
    result = form.get_by_role("list", name="Import result")
    expect(result).to_contain_text(f"Added: {ana.name}, {ben.name}")
    expect(result).to_contain_text(f"Not found: nobody-{ana.id}@example.org")
    expect(result).to_contain_text(f"Not students: {colleague.email}")
    expect(enrolled(tab).get_by_text(ana.name, exact=True)).to_be_visible()
    expect(enrolled(tab).get_by_text(ben.name, exact=True)).to_be_visible()
    assert tab.accessibility_problems() == []

    # A CSV file as a spreadsheet in many languages saves it: semicolons, a quoted name with a comma, a BOM.
    csv_file = form.get_by_label("CSV file", exact=True)
    csv_file.set_input_files(files=[{"name": "roster.csv", "mimeType": "text/csv",
                                     "buffer": b"Name;Address\r\nx;y\r\n"}])
    emails.fill("")
    form.get_by_role("button", name="Import", exact=True).click()
    expect(form).to_contain_text("CSV file: its first line has no “email” column.")
    expect(csv_file).to_have_attribute("aria-invalid", "true")

    content = f'\ufeffName;Email;Group\r\n"Martin, Chloé";{chloe.email};B\r\n"{ana.name}";{ana.email};A\r\n'
    csv_file.set_input_files(files=[{"name": "roster.csv", "mimeType": "text/csv", "buffer": content.encode()}])
    form.get_by_role("button", name="Import", exact=True).click()
    expect(form).to_contain_text("Import: 1 added · 1 already enrolled · 0 not found · 0 not students")
    expect(result).to_contain_text(f"Added: {chloe.name}")
    expect(result).to_contain_text(f"Already enrolled: {ana.name}")
    expect(enrolled(tab).get_by_role("listitem")).to_have_count(3)
    ids = [s["_id"] for s in assert_ok(api.get(f"/class/{class_id}", headers=teacher.headers))["students"]]
    assert sorted(ids) == sorted([ana.id, ben.id, chloe.id])


def test_remove_a_student_and_rename_the_class(console, make_person, api):
    tab, class_id, teacher, (ana, ben) = class_page(console, make_person, api, ("Ana", "Ben"))
    remove = enrolled(tab).get_by_role("button", name=f"Remove {ben.name}", exact=True)

    # Cancelled: nothing changes, the focus is back on the button.
    remove.click()
    dialog = tab.page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Remove {ben.name}?")
    assert tab.accessibility_problems() == []
    dialog.get_by_role("button", name="Cancel", exact=True).click()
    expect(remove).to_be_focused()
    expect(enrolled(tab).get_by_role("listitem")).to_have_count(2)

    remove.click()
    tab.page.get_by_role("dialog").get_by_role("button", name="Remove", exact=True).click()
    expect(enrolled(tab).get_by_role("listitem")).to_have_count(1)
    expect(enrolled(tab)).not_to_contain_text(ben.name)
    expect(enrolled(tab).get_by_role("button", name=f"Remove {ana.name}", exact=True)).to_be_focused()
    ids = [s["_id"] for s in assert_ok(api.get(f"/class/{class_id}", headers=teacher.headers))["students"]]
    assert ids == [ana.id]

    # Settings: the checks in the page first, then PATCH /class/:id.
    settings = tab.page.get_by_role("form", name="Class settings")
    name = settings.get_by_role("textbox", name="Class name", exact=True)
    min_rate = settings.get_by_role("spinbutton", name="Minimum rate (%)", exact=True)
    streak = settings.get_by_role("spinbutton", name="Absences in a row", exact=True)
    expect(min_rate).to_have_value("80")
    expect(streak).to_have_value("3")
    name.fill("   ")
    min_rate.fill("120")
    streak.fill("0")
    settings.get_by_role("button", name="Save settings", exact=True).click()
    expect(settings).to_contain_text("Class name: enter a class name")
    expect(settings).to_contain_text("Minimum rate (%): from 0 to 100.")
    expect(settings).to_contain_text("Absences in a row: from 1 to 100.")
    expect(name).to_be_focused()

    new_name = unique("Biology — 2nd year")
    name.fill(new_name)
    min_rate.fill("75.5")
    streak.fill("4")
    settings.get_by_role("button", name="Save settings", exact=True).click()
    expect(settings).to_contain_text("Settings saved.")
    expect(tab.page.get_by_role("heading", level=1)).to_have_text(new_name)
    klass = assert_ok(api.get(f"/class/{class_id}", headers=teacher.headers))
    assert (klass["className"], klass["minRate"], klass["maxConsecutiveAbsences"]) == (new_name, 0.755, 4)
    tab.page.reload()
    expect(tab.page.get_by_role("heading", level=1)).to_have_text(new_name)
    expect(min_rate).to_have_value("75.5")
    expect(streak).to_have_value("4")
    # The class list names it so too.
    tab.open()
    expect(tab.page.get_by_role("link", name=new_name, exact=True)).to_be_visible()


# Ben misses the last three of five sessions; Ana is late once; Chloé is excused once.
SESSIONS = [
    ("2026-11-02T09:00:00.000Z", {"ana": "present", "ben": "present", "chloe": "present"}),
    ("2026-11-09T09:00:00.000Z", {"ana": "late", "ben": "present", "chloe": "excused"}),
    ("2026-11-16T09:00:00.000Z", {"ana": "present", "ben": "absent", "chloe": "present"}),
    ("2026-11-23T09:00:00.000Z", {"ana": "present", "ben": "absent", "chloe": "absent"}),
    ("2026-11-30T09:00:00.000Z", {"ana": "present", "ben": "absent", "chloe": "present"}),
]


def persist_dated_sessions(wire_server, teacher: Person, class_id: str, people: dict[str, Person]) -> None:
    """The sessions above, persisted as DONE does, on their own dates."""
    plan = [(started, {people[k].id: status for k, status in marks.items()}) for started, marks in SESSIONS]
    persist_dated_sessions_of(wire_server, teacher, class_id, plan)


def persist_dated_sessions_of(wire_server, teacher: Person, class_id: str, plan: list) -> None:
    """Sessions `[(startedAt, {studentId: status})]` persisted as DONE does (in a shell of the server's own
    settings: another process on its database)."""
    wire_server.shell(
        "import json\n"
        "from accounts.models import User\n"
        "from tests.support import persist_session\n"
        f"teacher = User.objects.get(pk={teacher.id!r})\n"
        f"for started, marks in json.loads({json.dumps(plan)!r}):\n"
        f"    persist_session(teacher, {class_id!r}, started, marks)\n"
    )


def history_and_chart_screenshot(tab: Console) -> None:
    """docs/screenshots/teacher-charts.png: the class page from its History to its rate chart."""
    if not update_screenshots():
        return
    top = tab.page.get_by_role("region", name="History").bounding_box()
    bottom = tab.page.get_by_role("region", name="Rate over time").bounding_box()
    assert top and bottom
    clip = {"x": top["x"] - 8, "y": top["y"] - 8, "width": top["width"] + 16,
            "height": bottom["y"] + bottom["height"] - top["y"] + 16}
    tab.page.screenshot(path=str(SCREENSHOTS / "teacher-charts.png"), full_page=True, clip=clip)


def test_charts_at_risk_date_range_and_a_students_own_record(console, make_person, api, wire_server):
    tab, class_id, teacher, (ana, ben, chloe) = class_page(console, make_person, api, ("Ana", "Ben", "Chloé"))
    persist_dated_sessions(wire_server, teacher, class_id, {"ana": ana, "ben": ben, "chloe": chloe})
    tab.page.reload()
    page = tab.page
    history = page.get_by_role("region", name="History")
    expect(history.get_by_role("list", name="Past sessions").get_by_role("listitem")).to_have_count(5)

    # Ben: 2 of 5 (40 %) and three absences in a row; Chloé: 3 of 4 (75 %) but only one absence in a row.
    at_risk = history.get_by_role("list", name="2 students at risk")
    expect(at_risk.get_by_role("listitem")).to_have_text([
        f"{ben.name} · rate 40 % < 80 %, 3 absences in a row",
        f"{chloe.name} · rate 75 % < 80 %",
    ])
    report = history.get_by_role("table")
    ben_row = report.get_by_role("row").filter(has_text=ben.name)
    expect(ben_row).to_have_class(re.compile(r"\bat-risk\b"))
    expect(ben_row).to_contain_text("At risk rate 40 % < 80 %, 3 absences in a row")
    expect(report.get_by_role("row").filter(has_text=ana.name)).not_to_have_class(re.compile(r"\bat-risk\b"))

    # Each student's strip: an image whose name lists the sessions in words, oldest first.
    expect(ben_row.get_by_role("img")).to_have_attribute(
        "aria-label", f"{ben.name}: last 5 sessions, oldest first: Present, Present, Absent, Absent, Absent")
    expect(report.get_by_role("row").filter(has_text=chloe.name).get_by_role("img")).to_have_attribute(
        "aria-label", f"{chloe.name}: last 5 sessions, oldest first: Present, Excused, Present, Absent, Present")
    expect(ben_row.locator(".cell text")).to_have_text(["P", "P", "A", "A", "A"])  # letters, not colour alone

    # The class's rate per session: an image with a summary, and the numbers in a (visually hidden) table.
    chart = page.get_by_role("region", name="Rate over time")
    image = chart.get_by_role("img")
    expect(image).to_have_attribute("aria-label", re.compile(
        r"^Rate per session: 5 sessions from .+; latest 66\.7 %, lowest 33\.3 %, highest 100 %; 3 under the "
        r"minimum of 80 %\.$"))
    numbers = chart.get_by_role("table", name="Rate per session")
    expect(numbers.locator("tbody tr")).to_have_count(5)
    expect(numbers.locator("tbody tr").nth(1).locator("td").first).to_have_text("100\u00a0%")  # excused left out
    expect(chart.locator("rect.chart-bar")).to_have_count(5)
    expect(chart.locator("rect.chart-bar-under")).to_have_count(3)
    assert tab.accessibility_problems() == []
    history_and_chart_screenshot(tab)

    # The thresholds change the highlight: at most 2 absences in a row, 30 %.
    settings = page.get_by_role("form", name="Class settings")
    settings.get_by_role("spinbutton", name="Minimum rate (%)", exact=True).fill("30")
    settings.get_by_role("spinbutton", name="Absences in a row", exact=True).fill("4")
    settings.get_by_role("button", name="Save settings", exact=True).click()
    expect(history).to_contain_text("No student at risk.")
    expect(report.locator("tr.at-risk")).to_have_count(0)

    # A date range: 9 to 23 November, both days included (in the browser's time zone).
    history.get_by_label("From", exact=True).fill("2026-11-09")
    history.get_by_label("To", exact=True).fill("2026-11-23")
    history.get_by_role("button", name="Show these dates", exact=True).click()
    expect(history.get_by_role("list", name="Past sessions").get_by_role("listitem")).to_have_count(3)
    expect(report.locator("caption")).to_have_text("3 sessions saved in these dates")
    expect(ben_row.get_by_role("img")).to_have_attribute(
        "aria-label", f"{ben.name}: last 3 sessions, oldest first: Present, Absent, Absent")
    expect(chart.locator("rect.chart-bar")).to_have_count(3)

    # Excel beside the CSV, for the same dates, in the browser's time zone.
    with page.expect_download() as download_info:
        history.get_by_role("button", name="Download Excel", exact=True).click()
    download = download_info.value
    assert download.suggested_filename.endswith("-attendance.xlsx"), download.suggested_filename
    with open(download.path(), "rb") as workbook:
        assert workbook.read(2) == b"PK"  # a zip: an Excel workbook
    asked = [url for url in tab.traffic.requests if "/report.xlsx?" in url]
    assert asked and "tz=" in asked[-1] and "from=2026-11-" in asked[-1] and "to=2026-11-2" in asked[-1], asked
    # A browser zone the server does not know (400): the workbook comes in UTC instead.
    def unknown_zone(route):
        if "tz=UTC" in route.request.url:
            route.continue_()
        else:
            route.fulfill(status=400, json={"success": False, "error": "Invalid request schema"})

    page.route("**/report.xlsx?*", unknown_zone)
    with page.expect_download() as download_info:
        history.get_by_role("button", name="Download Excel", exact=True).click()
    assert download_info.value.suggested_filename.endswith("-attendance.xlsx")
    page.unroute("**/report.xlsx?*", unknown_zone)
    with page.expect_download() as download_info:
        history.get_by_role("button", name="Download CSV", exact=True).click()
    lines = open(download_info.value.path(), encoding="utf-8").read().splitlines()
    assert len(lines[0].split(",")) == 3 + 3 + 5, lines[0]  # id, name, email, three sessions, five totals

    history.get_by_role("button", name="All dates", exact=True).click()
    expect(history.get_by_role("list", name="Past sessions").get_by_role("listitem")).to_have_count(5)
    expect(history.get_by_label("From", exact=True)).to_have_value("")

    # Ben sees his own strip, his rate and (once the thresholds are back) the notice.
    settings.get_by_role("spinbutton", name="Minimum rate (%)", exact=True).fill("80")
    settings.get_by_role("spinbutton", name="Absences in a row", exact=True).fill("3")
    settings.get_by_role("button", name="Save settings", exact=True).click()
    expect(history.get_by_role("list", name="2 students at risk")).to_be_visible()
    mine = console().log_in(ben).open_class(class_id)
    record = mine.page.get_by_role("region", name="Your record")
    expect(record.get_by_role("note", name="At risk")).to_contain_text(
        "You are at risk in this class: rate 40 % < 80 %, 3 absences in a row.")
    expect(record).to_contain_text("Your rate: 40\u00a0%")
    expect(record.get_by_role("img")).to_have_attribute(
        "aria-label", "Your last 5 sessions, oldest first: Present, Present, Absent, Absent, Absent")
    assert mine.accessibility_problems() == []
    mine.screenshot("student-record", until=record)

    # Ana is not at risk: no notice.
    hers = console().log_in(ana).open_class(class_id)
    record = hers.page.get_by_role("region", name="Your record")
    expect(record).to_contain_text("Your rate: 100\u00a0%")
    expect(record.get_by_role("note")).to_have_count(0)


def test_a_student_who_becomes_at_risk_at_done_sees_the_notice_without_a_reload(console, make_person, api, wire_server):
    tab, class_id, teacher, (ana, ben) = class_page(console, make_person, api, ("Ana", "Ben"))
    # Two absences in a row already (the class allows three), a rate of 50 % under the minimum set to 40 %.
    persist_dated_sessions_of(wire_server, teacher, class_id, [
        ("2026-11-02T09:00:00.000Z", {ana.id: "present", ben.id: "present"}),
        ("2026-11-09T09:00:00.000Z", {ana.id: "present", ben.id: "present"}),
        ("2026-11-16T09:00:00.000Z", {ana.id: "present", ben.id: "absent"}),
        ("2026-11-23T09:00:00.000Z", {ana.id: "present", ben.id: "absent"}),
    ])
    settings = tab.page.get_by_role("form", name="Class settings")
    settings.get_by_role("spinbutton", name="Minimum rate (%)", exact=True).fill("40")
    settings.get_by_role("button", name="Save settings", exact=True).click()
    expect(settings).to_contain_text("Settings saved.")

    mine = console(viewport=PHONE).log_in(ben).open_class(class_id)
    record = mine.page.get_by_role("region", name="Your record")
    expect(record).to_contain_text("Your rate: 50\u00a0%")
    expect(record.get_by_role("note")).to_have_count(0)

    tab.start_session()
    tab.mark(ana.name, "Present")
    expect(mine.status()).to_have_text("Session in progress · Not marked yet")
    tab.end_session()  # Ben, never marked, is absent: three in a row
    expect(mine.status()).to_have_text("Session ended · Absent")
    expect(record.get_by_role("note", name="At risk")).to_contain_text(
        "You are at risk in this class: 3 absences in a row.")
    expect(record).to_contain_text("Your rate: 40\u00a0%")
    expect(record.get_by_role("img")).to_have_attribute(
        "aria-label", "Your last 5 sessions, oldest first: Present, Present, Absent, Absent, Absent")
    assert mine.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing wider
    assert mine.accessibility_problems() == []

    # The teacher's page follows the DONE too; on a phone only the report's table scrolls sideways.
    history = tab.page.get_by_role("region", name="History")
    expect(history.get_by_role("list", name="1 student at risk")).to_have_text(f"{ben.name} · 3 absences in a row")
    phone = console(viewport=PHONE).log_in(teacher).open_class(class_id)
    expect(phone.page.get_by_role("region", name="Rate over time").get_by_role("img")).to_be_visible()
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
