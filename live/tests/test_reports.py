"""Reports a school uses (docs/api.md "Reports and roster"): a period on the history routes, the run of absences and
who is at risk, the Excel workbook and a student's own summary — each scenario in-process and over the wire."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from tests.support import (
    CLASS_NOT_FOUND,
    INVALID_SCHEMA,
    MISSING_ID,
    NOT_CLASS_TEACHER,
    NOT_ENROLLED,
    STUDENT_REQUIRED,
    TEACHER_REQUIRED,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PERIOD_ROUTES = ["sessions", "report", "report.csv", "report.xlsx"]


def parse(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def report(site, teacher, class_id, **params):
    return assert_ok(site.get(f"/class/{class_id}/report", teacher, **params))


def workbook(site, teacher, class_id, **params):
    response = site.get(f"/class/{class_id}/report.xlsx", teacher, **params)
    assert response.status_code == 200, response.content
    assert response.headers["Content-Type"] == XLSX
    assert response.headers["Cache-Control"] == "private, no-store"
    return response, openpyxl.load_workbook(io.BytesIO(response.content))


@pytest.fixture
def three_sessions(site):
    """Three persisted sessions, a known start each."""
    teacher = site.person("teacher")
    ann, bob = site.person("student", "Ann Archer"), site.person("student", "Bob Baker")
    class_id = site.new_class(teacher, [ann, bob], name="History")
    starts = [
        site.session(teacher, class_id, {ann.id: "present", bob.id: "present"}),
        site.session(teacher, class_id, {ann.id: "absent", bob.id: "late"}),
        site.session(teacher, class_id, {ann.id: "excused", bob.id: "absent"}),
    ]
    return teacher, class_id, (ann, bob), starts


# --- from / to ----------------------------------------------------------------------------------------------------


def test_from_is_inclusive_and_to_exclusive_on_every_history_route(site, three_sessions):
    teacher, class_id, (ann, bob), (first, second, third) = three_sessions
    period = {"from": second, "to": third}  # exactly the second session
    sessions = assert_ok(site.get(f"/class/{class_id}/sessions", teacher, **period))
    assert [s["startedAt"] for s in sessions] == [second]
    data = report(site, teacher, class_id, **period)
    assert data["sessions"] == 1
    counts = {s["_id"]: (s["present"], s["absent"], s["late"], s["excused"]) for s in data["students"]}
    assert counts == {ann.id: (0, 1, 0, 0), bob.id: (0, 0, 1, 0)}
    rows = list(csv.reader(io.StringIO(site.get(f"/class/{class_id}/report.csv", teacher, **period).text)))
    assert rows[0][3:-5] == [second]
    _, book = workbook(site, teacher, class_id, **period)
    assert book["Sessions"].max_row == 2  # its heading and the one session

    # One bound at a time; an offset is read as such; no bounds is everything.
    since = assert_ok(site.get(f"/class/{class_id}/sessions", teacher, **{"from": second}))
    assert [s["startedAt"] for s in since] == [third, second]
    assert report(site, teacher, class_id, to=second)["sessions"] == 1
    later = (parse(third) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+02:00"  # = third, in UTC
    assert report(site, teacher, class_id, **{"from": later})["sessions"] == 1
    assert report(site, teacher, class_id)["sessions"] == 3
    # A period with no sessions: every student, nothing counted.
    empty = report(site, teacher, class_id, **{"from": "2000-01-01T00:00:00Z", "to": "2000-01-02T00:00:00Z"})
    assert empty["sessions"] == 0 and [s["rate"] for s in empty["students"]] == [None, None]


def test_the_period_combines_with_before_and_limit(site, three_sessions):
    teacher, class_id, _, (first, second, third) = three_sessions
    page = assert_ok(site.get(f"/class/{class_id}/sessions", teacher, **{"from": first, "before": third, "limit": "1"}))
    assert [s["startedAt"] for s in page] == [second]


@pytest.mark.parametrize("route", PERIOD_ROUTES)
@pytest.mark.parametrize(
    "params",
    [
        {"from": "yesterday"},
        {"to": "2025-03-10"},  # a date alone
        {"from": "1741600000"},  # a Unix time
        {"to": "2025-13-01T00:00:00Z"},
        {"from": ""},
    ],
)
def test_a_bad_period_is_400_before_the_class_is_looked_up(site, route, params):
    teacher = site.person("teacher")
    assert_error(site.get(f"/class/{MISSING_ID}/{route}", teacher, **params), 400, INVALID_SCHEMA)


@pytest.mark.parametrize("route", PERIOD_ROUTES)
def test_the_period_routes_check_who_asks(site, route):
    teacher, other, student = site.person("teacher"), site.person("teacher"), site.person("student")
    class_id = site.new_class(teacher, [student])
    period = {"from": "2025-01-01T00:00:00Z"}
    assert_error(site.get(f"/class/{class_id}/{route}", None, **period), 401, UNAUTHORIZED)
    assert_error(site.get(f"/class/{class_id}/{route}", student, **period), 403, TEACHER_REQUIRED)
    assert_error(site.get(f"/class/{MISSING_ID}/{route}", teacher, **period), 404, CLASS_NOT_FOUND)
    assert_error(site.get(f"/class/{class_id}/{route}", other, **period), 403, NOT_CLASS_TEACHER)


# --- the run of absences, and who is at risk --------------------------------------------------------------------


def test_consecutive_absences_and_at_risk(site):
    teacher = site.person("teacher")
    ann, bob, cleo, dan, eve = (site.person("student", n) for n in ("Ann", "Bob", "Cleo", "Dan", "Eve"))
    class_id = site.new_class(teacher, [ann, bob, cleo, dan, eve])
    a, p, late, x = "absent", "present", "late", "excused"
    marks = {  # oldest first
        ann.id: [p, p, p, p, a, x, a],  # excused neither counts nor breaks the run: 2
        bob.id: [p, p, p, p, a, a, a],  # 3 in a row: at risk however good the rate
        cleo.id: [a, a, a, a, a, a, late],  # late ends the run; rate 1/7 below 0.8
        dan.id: [p, p, p, p, p, p, p],
        eve.id: [x, x, x, x, x, x, x],  # nothing counted: rate null, never at risk
    }
    for day in range(7):
        site.session(teacher, class_id, {sid: statuses[day] for sid, statuses in marks.items()})
    students = {s["_id"]: s for s in report(site, teacher, class_id)["students"]}

    def verdict(person):
        s = students[person.id]
        return s["rate"], s["consecutiveAbsences"], s["atRisk"]

    assert verdict(ann) == (round(4 / 6, 4), 2, True)  # 0.6667 < 0.8
    assert verdict(bob) == (round(4 / 7, 4), 3, True)
    assert verdict(cleo) == (round(1 / 7, 4), 0, True)
    assert verdict(dan) == (1.0, 0, False)
    assert verdict(eve) == (None, 0, False)

    # The class's settings decide.
    assert_ok(site.request("PATCH", f"/class/{class_id}", teacher, body={"minRate": 0.5, "maxConsecutiveAbsences": 4}))
    students = {s["_id"]: s for s in report(site, teacher, class_id)["students"]}
    assert [students[p_.id]["atRisk"] for p_ in (ann, bob, cleo, dan, eve)] == [False, False, True, False, False]
    assert_ok(site.request("PATCH", f"/class/{class_id}", teacher, body={"minRate": 0, "maxConsecutiveAbsences": 2}))
    students = {s["_id"]: s for s in report(site, teacher, class_id)["students"]}
    assert [students[p_.id]["atRisk"] for p_ in (ann, bob, cleo, dan, eve)] == [True, True, False, False, False]
    # A rate exactly at minRate is not below it.
    settings = {"minRate": round(4 / 7, 4), "maxConsecutiveAbsences": 100}
    assert_ok(site.request("PATCH", f"/class/{class_id}", teacher, body=settings))
    students = {s["_id"]: s for s in report(site, teacher, class_id)["students"]}
    assert [students[p_.id]["atRisk"] for p_ in (ann, bob, cleo, dan, eve)] == [False, False, True, False, False]


def test_sessions_before_a_student_was_enrolled_neither_count_nor_break_the_run(site):
    teacher, ann, bob = site.person("teacher"), site.person("student", "Ann"), site.person("student", "Bob")
    class_id = site.new_class(teacher, [ann])
    site.session(teacher, class_id, {ann.id: "absent"})
    site.enrol(teacher, class_id, bob)
    site.session(teacher, class_id, {ann.id: "present", bob.id: "absent"})
    site.session(teacher, class_id, {ann.id: "present"})  # Bob unmarked: absent
    students = {s["_id"]: s for s in report(site, teacher, class_id)["students"]}
    assert (students[bob.id]["consecutiveAbsences"], students[bob.id]["absent"]) == (2, 2)
    assert students[ann.id]["consecutiveAbsences"] == 0


# --- the Excel workbook --------------------------------------------------------------------------------------------


def test_the_workbook_has_the_csvs_columns_and_a_sessions_sheet(site, three_sessions):
    teacher, class_id, (ann, bob), starts = three_sessions
    rows = list(csv.reader(io.StringIO(site.get(f"/class/{class_id}/report.csv", teacher).text)))
    response, book = workbook(site, teacher, class_id)
    assert book.sheetnames == ["Attendance", "Sessions"]
    attendance = [list(row) for row in book["Attendance"].iter_rows(values_only=True)]
    headings = [parse(s).strftime("%Y-%m-%d %H:%M") for s in starts]  # in UTC by default
    assert attendance[0] == [*rows[0][:3], *headings, *rows[0][-5:]]
    for got, line in zip(attendance[1:], rows[1:], strict=True):
        assert got[:3] == line[:3]
        assert [cell or "" for cell in got[3:6]] == line[3:6]
        assert got[6:10] == [int(n) for n in line[6:10]]
        assert got[10] == float(line[10])
    rate_cells = [row[-1] for row in book["Attendance"].iter_rows(min_row=2)]
    assert all(cell.number_format == "0.00%" and cell.data_type == "n" for cell in rate_cells)

    sessions = list(book["Sessions"].iter_rows(values_only=True))
    assert sessions[0] == ("start", "end", "present", "absent", "late", "excused", "total")
    assert [row[0] for row in sessions[1:]] == [parse(s).replace(tzinfo=None, microsecond=0) for s in starts] or [
        row[0] for row in sessions[1:]
    ] == [parse(s).replace(tzinfo=None) for s in starts]
    assert [row[2:] for row in sessions[1:]] == [(2, 0, 0, 0, 2), (0, 1, 1, 0, 2), (0, 1, 0, 1, 2)]
    assert all(row[1] >= row[0] for row in sessions[1:])

    disposition = response.headers["Content-Disposition"]
    assert 'filename="History-attendance.xlsx"' in disposition
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "History-attendance.xlsx"


def test_the_workbook_shows_the_sessions_in_the_requested_zone(site, three_sessions):
    teacher, class_id, _, starts = three_sessions
    _, book = workbook(site, teacher, class_id, tz="Asia/Kolkata")
    zone = ZoneInfo("Asia/Kolkata")
    headings = [parse(s).astimezone(zone).strftime("%Y-%m-%d %H:%M") for s in starts]
    assert next(book["Attendance"].iter_rows(values_only=True))[3:6] == tuple(headings)
    first = next(book["Sessions"].iter_rows(min_row=2, values_only=True))[0]
    assert abs(first - parse(starts[0]).astimezone(zone).replace(tzinfo=None)) < timedelta(milliseconds=1)


@pytest.mark.parametrize("tz", ["Mars/Olympus", "../../etc/passwd", "", "+05:30", "x" * 100])
def test_an_unknown_zone_is_400(site, tz):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher)
    assert_error(site.get(f"/class/{class_id}/report.xlsx", teacher, tz=tz), 400, INVALID_SCHEMA)


def test_workbook_text_cells_are_never_formulas(site):
    teacher = site.person("teacher")
    sly = site.person("student", "=HYPERLINK(\"http://evil\",\"x\")")
    plus = site.person("student", "+1+1")
    error_value = site.person("student", "#N/A")  # Excel's error values are not text either
    class_id = site.new_class(teacher, [sly, plus, error_value], name="=cmd|' /C calc'!A0")
    site.session(teacher, class_id, {sly.id: "present"})
    response, book = workbook(site, teacher, class_id)
    cells = [cell for row in book["Attendance"].iter_rows() for cell in row]
    assert all(cell.data_type not in ("f", "e") for cell in cells)
    names = sorted(row[1] for row in book["Attendance"].iter_rows(min_row=2, values_only=True))
    assert names == ["'#N/A", "'+1+1", "'=HYPERLINK(\"http://evil\",\"x\")"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:  # no formula element in any sheet
        sheets = [archive.read(name) for name in archive.namelist() if name.startswith("xl/worksheets/")]
    assert sheets and not any(b"<f>" in sheet or b"<f " in sheet for sheet in sheets)


def test_an_empty_class_gives_a_workbook_with_headings_only(site):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher)
    _, book = workbook(site, teacher, class_id)
    assert list(book["Attendance"].iter_rows(values_only=True)) == [
        ("studentId", "name", "email", "present", "absent", "late", "excused", "rate")
    ]
    assert list(book["Sessions"].iter_rows(values_only=True)) == [
        ("start", "end", "present", "absent", "late", "excused", "total")
    ]


def test_workbook_errors_are_json(site):
    teacher, other = site.person("teacher"), site.person("teacher")
    class_id = site.new_class(teacher)
    response = site.get(f"/class/{class_id}/report.xlsx", other)
    assert response.headers["Content-Type"] == "application/json"
    assert_error(response, 403, NOT_CLASS_TEACHER)


# --- a student's own summary ------------------------------------------------------------------------------------------


def test_my_summary(site):
    teacher, ann, bob = site.person("teacher"), site.person("student", "Ann"), site.person("student", "Bob")
    class_id = site.new_class(teacher, [ann, bob])
    assert assert_ok(site.get(f"/class/{class_id}/my-summary", ann)) == {
        "present": 0, "absent": 0, "late": 0, "excused": 0, "rate": None, "atRisk": False, "consecutiveAbsences": 0
    }
    for statuses in (("present", "late"), ("late", "absent"), ("excused", "absent"), ("absent", "absent")):
        site.session(teacher, class_id, {ann.id: statuses[0], bob.id: statuses[1]})
    assert assert_ok(site.get(f"/class/{class_id}/my-summary", ann)) == {
        "present": 1, "absent": 1, "late": 1, "excused": 1, "rate": 0.6667, "atRisk": True, "consecutiveAbsences": 1
    }
    assert assert_ok(site.get(f"/class/{class_id}/my-summary", bob)) == {
        "present": 0, "absent": 3, "late": 1, "excused": 0, "rate": 0.25, "atRisk": True, "consecutiveAbsences": 3
    }
    # What the teacher's report says of them, the same.
    students = {s["_id"]: s for s in report(site, teacher, class_id)["students"]}
    assert (students[bob.id]["consecutiveAbsences"], students[bob.id]["atRisk"]) == (3, True)


def test_my_summary_check_order(site):
    teacher, student, outsider = site.person("teacher"), site.person("student"), site.person("student")
    class_id = site.new_class(teacher, [student])
    assert_error(site.get(f"/class/{class_id}/my-summary"), 401, UNAUTHORIZED)
    assert_error(site.get(f"/class/{class_id}/my-summary", teacher), 403, STUDENT_REQUIRED)
    assert_error(site.get(f"/class/{MISSING_ID}/my-summary", student), 404, CLASS_NOT_FOUND)
    assert_error(site.get(f"/class/{class_id}/my-summary", outsider), 403, NOT_ENROLLED)
