"""History and reports (docs/api.md "HTTP API"): every scenario runs in-process and over the
wire (the `site` fixture), against the same expectations."""

from __future__ import annotations

import csv
import io
import re
import secrets
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import unquote

import pytest

from live.history import FOLDED_NAME_KEPT_LENGTH, folded_name, kept_folded_name, name_order
from tests.support import (
    CLASS_NOT_FOUND,
    INVALID_SCHEMA,
    ISO_MS_Z,
    MALFORMED_IDS,
    METHOD_NOT_ALLOWED,
    MISSING_ID,
    NOT_CLASS_TEACHER,
    NOT_ENROLLED,
    NOT_FOUND,
    OBJECT_ID,
    SESSION_NOT_FOUND,
    STUDENT_REQUIRED,
    TEACHER_REQUIRED,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
)

CSV_TYPE = "text/csv; charset=utf-8"


def parse_iso(value: str) -> datetime:
    assert ISO_MS_Z.match(value), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def sessions_of(site, teacher, class_id, **params):
    return assert_ok(site.get(f"/class/{class_id}/sessions", teacher, **params))


def report_of(site, teacher, class_id):
    return assert_ok(site.get(f"/class/{class_id}/report", teacher))


def csv_of(site, teacher, class_id):
    response = site.get(f"/class/{class_id}/report.csv", teacher)
    assert response.status_code == 200, response.content
    assert response.headers["Content-Type"] == CSV_TYPE
    return response


def member(person, **extra):
    return {
        "_id": person.id,
        "name": person.name,
        "email": person.email,
        "late": 0,
        "excused": 0,
        "consecutiveAbsences": 0,
        "atRisk": False,
        **extra,
    }


def by_teacher(detail, index):
    """A record's remark and last change (asserted apart): none, at a millisecond ISO moment."""
    record = detail["records"][index]
    assert record["remark"] is None and ISO_MS_Z.fullmatch(record["at"]), record
    return {key: record[key] for key in ("remark", "at", "by", "source")}


@pytest.fixture
def two_sessions(site):
    """A class of three, two persisted sessions with different marks; Cleo enrolled after the first."""
    teacher = site.person("teacher")
    ann, bob, cleo = (site.person("student", name) for name in ("Ann Archer", "Bob Baker", "Cleo Clark"))
    class_id = site.new_class(teacher, [ann, bob], name="Maths 101")
    first = site.session(teacher, class_id, {ann.id: "present", bob.id: "absent"})
    site.enrol(teacher, class_id, cleo)
    second = site.session(teacher, class_id, {ann.id: "present", bob.id: "present"})  # Cleo unmarked: absent
    return teacher, class_id, (ann, bob, cleo), (first, second)


# --- GET /class/:id/sessions -------------------------------------------------------------------------------


def test_sessions_newest_first_with_counts(site, two_sessions):
    teacher, class_id, _, (first, second) = two_sessions
    sessions = sessions_of(site, teacher, class_id)
    assert [s["startedAt"] for s in sessions] == [second, first]
    assert [(s["present"], s["absent"], s["total"]) for s in sessions] == [(2, 1, 3), (1, 1, 2)]
    for session in sessions:
        assert set(session) == {"_id", "startedAt", "endedAt", "present", "absent", "late", "excused", "total"}
        assert (session["late"], session["excused"]) == (0, 0)
        assert OBJECT_ID.match(session["_id"])
        assert parse_iso(session["startedAt"]) <= parse_iso(session["endedAt"])
    assert sessions[0]["_id"] != sessions[1]["_id"]
    # endedAt is when DONE persisted it: after the first started, not after the second.
    assert parse_iso(sessions[1]["endedAt"]) <= parse_iso(second)


def test_ended_at_is_when_done_persisted_the_session(site):
    teacher, student = site.person("teacher"), site.person("student")
    class_id = site.new_class(teacher, [student])
    site.live(teacher, class_id, {student.id: "present"})
    before_done = datetime.now(tz=UTC)
    site.done(teacher)
    after_done = datetime.now(tz=UTC)
    [session] = sessions_of(site, teacher, class_id)
    # Same machine, same clock; milliseconds, truncated.
    assert before_done - timedelta(milliseconds=1) <= parse_iso(session["endedAt"]) <= after_done


def test_no_sessions_yet_and_the_live_one_is_not_history(site):
    teacher, student = site.person("teacher"), site.person("student")
    class_id = site.new_class(teacher, [student])
    assert sessions_of(site, teacher, class_id) == []
    site.live(teacher, class_id, {student.id: "present"})
    assert sessions_of(site, teacher, class_id) == []
    assert report_of(site, teacher, class_id)["sessions"] == 0
    assert assert_ok(site.get(f"/class/{class_id}/my-history", student)) == []


def test_sessions_pagination_with_limit_and_before(site):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher)
    starts = [site.session(teacher, class_id) for _ in range(5)]
    newest_first = starts[::-1]

    page = sessions_of(site, teacher, class_id, limit="2")
    assert [s["startedAt"] for s in page] == newest_first[:2]
    page = sessions_of(site, teacher, class_id, limit="2", before=page[-1]["startedAt"])
    assert [s["startedAt"] for s in page] == newest_first[2:4]
    page = sessions_of(site, teacher, class_id, limit="2", before=page[-1]["startedAt"])
    assert [s["startedAt"] for s in page] == newest_first[4:]
    assert sessions_of(site, teacher, class_id, limit="2", before=page[-1]["startedAt"]) == []

    assert [s["startedAt"] for s in sessions_of(site, teacher, class_id)] == newest_first  # default 100
    assert len(sessions_of(site, teacher, class_id, limit="1")) == 1
    assert len(sessions_of(site, teacher, class_id, limit="500")) == 5
    # `before` is strict, and any ISO form of the same moment works: another offset, no offset (UTC).
    third = parse_iso(starts[2])
    in_paris = third.astimezone(timezone(timedelta(hours=2))).isoformat()
    for before in (starts[2], in_paris, third.replace(tzinfo=None).isoformat(timespec="milliseconds")):
        assert [s["startedAt"] for s in sessions_of(site, teacher, class_id, before=before)] == starts[1::-1]
    # Finer than a millisecond (startedAt has milliseconds): still strictly before, on every database.
    later = (third + timedelta(microseconds=500)).isoformat()
    assert [s["startedAt"] for s in sessions_of(site, teacher, class_id, before=later)] == starts[2::-1]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "-1"},
        {"limit": "abc"},
        {"limit": "1.5"},
        {"limit": "5e1"},
        {"limit": ""},
        {"limit": " 5"},
        {"before": ""},
        {"before": "yesterday"},
        {"before": "2025-13-01T00:00:00Z"},
        {"before": "2025-03-11"},
        {"before": "1700000000"},
        {"before": "2025-03-11T10:00:00.000Z", "limit": "0"},
    ],
)
def test_sessions_bad_query_is_invalid_schema(site, params):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher)
    assert_error(site.get(f"/class/{class_id}/sessions", teacher, **params), 400, INVALID_SCHEMA)


def test_sessions_unknown_query_parameters_are_ignored(site):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher)
    assert sessions_of(site, teacher, class_id, page="3", limit="10") == []


# --- GET /class/:id/sessions/:sessionId --------------------------------------------------------------------


def test_session_detail_has_every_record_by_name(site, two_sessions):
    teacher, class_id, (ann, bob, cleo), (first, second) = two_sessions
    newest, oldest = sessions_of(site, teacher, class_id)

    detail = assert_ok(site.get(f"/class/{class_id}/sessions/{oldest['_id']}", teacher))
    assert detail == {
        **oldest,
        "classId": class_id,
        "records": [
            {"studentId": ann.id, "name": ann.name, "email": ann.email, "status": "present", **by_teacher(detail, 0)},
            {"studentId": bob.id, "name": bob.name, "email": bob.email, "status": "absent", **by_teacher(detail, 1)},
        ],
    }
    assert [r["source"] for r in detail["records"]] == ["teacher", "teacher"]
    assert {r["by"] for r in detail["records"]} == {teacher.id}
    detail = assert_ok(site.get(f"/class/{class_id}/sessions/{newest['_id']}", teacher))
    assert detail["startedAt"] == second and (detail["present"], detail["absent"], detail["total"]) == (2, 1, 3)
    assert [(r["studentId"], r["status"]) for r in detail["records"]] == [
        (ann.id, "present"),
        (bob.id, "present"),
        (cleo.id, "absent"),
    ]


def test_session_records_sort_by_name_ignoring_case_and_accents(site):
    teacher = site.person("teacher")
    names = ["zoe", "Émile", "Adam", "emma", "Bea"]
    students = [site.person("student", name) for name in names]
    class_id = site.new_class(teacher, students)
    site.session(teacher, class_id)
    [session] = sessions_of(site, teacher, class_id)
    records = assert_ok(site.get(f"/class/{class_id}/sessions/{session['_id']}", teacher))["records"]
    assert [r["name"] for r in records] == ["Adam", "Bea", "Émile", "emma", "zoe"]
    report = report_of(site, teacher, class_id)
    assert [s["name"] for s in report["students"]] == ["Adam", "Bea", "Émile", "emma", "zoe"]


def test_a_name_s_folded_form_is_kept_and_the_same_as_folding_it_again():
    kept_folded_name.cache_clear()
    names = ("Émile", "ÉMILE", "Zoë", "Ångström")
    assert [name_order(name, "", "")[0] for name in names] == ["emile", "emile", "zoe", "angstrom"]
    assert name_order("Émile", "e@x.io", "id1") == ("emile", "Émile", "e@x.io", "id1")
    assert kept_folded_name.cache_info().hits == 1 and kept_folded_name.cache_info().currsize == 4
    long_name = "Ë" * (FOLDED_NAME_KEPT_LENGTH + 1)  # folded each time, not kept
    assert name_order(long_name, "", "")[0] == folded_name(long_name) == "e" * (FOLDED_NAME_KEPT_LENGTH + 1)
    assert kept_folded_name.cache_info().currsize == 4


def test_session_of_another_class_is_not_found(site, two_sessions):
    teacher, class_id, _, _ = two_sessions
    other_class = site.new_class(teacher)
    session_id = sessions_of(site, teacher, class_id)[0]["_id"]
    assert_error(site.get(f"/class/{other_class}/sessions/{session_id}", teacher), 404, SESSION_NOT_FOUND)


@pytest.mark.parametrize("session_id", [MISSING_ID, *MALFORMED_IDS])
def test_unknown_or_malformed_session_is_not_found(site, session_id):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher)
    assert_error(site.get(f"/class/{class_id}/sessions/{session_id}", teacher), 404, SESSION_NOT_FOUND)


# --- GET /class/:id/report ---------------------------------------------------------------------------------


def test_report_counts_and_rates(site, two_sessions):
    teacher, class_id, (ann, bob, cleo), _ = two_sessions
    lena = site.person("student", "Lena Late")  # enrolled, never in a session
    site.enrol(teacher, class_id, lena)
    assert report_of(site, teacher, class_id) == {
        "classId": class_id,
        "className": "Maths 101",
        "sessions": 2,
        "students": [
            member(ann, present=2, absent=0, rate=1.0),
            member(bob, present=1, absent=1, rate=0.5, atRisk=True),  # below 0.8
            member(cleo, present=0, absent=1, rate=0.0, consecutiveAbsences=1, atRisk=True),
            member(lena, present=0, absent=0, rate=None),
        ],
    }


def test_report_rate_is_rounded_to_four_places(site):
    teacher, student = site.person("teacher"), site.person("student")
    class_id = site.new_class(teacher, [student])
    for status in ("present", "present", "absent"):
        site.session(teacher, class_id, {student.id: status})
    [row] = report_of(site, teacher, class_id)["students"]
    assert (row["present"], row["absent"], row["rate"]) == (2, 1, 0.6667)


def test_report_of_an_empty_class(site):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher, name="Empty")
    empty = {"classId": class_id, "className": "Empty", "sessions": 0, "students": []}
    assert report_of(site, teacher, class_id) == empty
    site.session(teacher, class_id)
    assert report_of(site, teacher, class_id)["sessions"] == 1


# --- GET /class/:id/report.csv -----------------------------------------------------------------------------


def expected_cells(site, teacher, class_id):
    """studentId → [status or "" per session, oldest first], from the JSON session details."""
    sessions = sessions_of(site, teacher, class_id)[::-1]
    by_session = []
    for session in sessions:
        detail = assert_ok(site.get(f"/class/{class_id}/sessions/{session['_id']}", teacher))
        by_session.append({r["studentId"]: r["status"] for r in detail["records"]})
    return [s["startedAt"] for s in sessions], lambda sid: [records.get(sid, "") for records in by_session]


def guarded(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def assert_csv_matches_report(site, teacher, class_id):
    """Open the CSV with csv.reader and compare it, cell by cell, with the JSON report and sessions."""
    response = csv_of(site, teacher, class_id)
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))
    report = report_of(site, teacher, class_id)
    starts, cells = expected_cells(site, teacher, class_id)
    assert rows[0] == ["studentId", "name", "email", *starts, "present", "absent", "late", "excused", "rate"]
    assert len(rows) == 1 + len(report["students"])
    for row, student in zip(rows[1:], report["students"], strict=True):
        rate = "" if student["rate"] is None else str(student["rate"])
        assert row == [
            student["_id"],
            guarded(student["name"]),
            guarded(student["email"]),
            *cells(student["_id"]),
            str(student["present"]),
            str(student["absent"]),
            str(student["late"]),
            str(student["excused"]),
            rate,
        ]
        if student["rate"] is not None:
            assert float(row[-1]) == student["rate"]
    return rows, report


def test_csv_has_one_column_per_session_and_empty_cells_before_enrolment(site, two_sessions):
    teacher, class_id, (ann, bob, cleo), (first, second) = two_sessions
    rows, _ = assert_csv_matches_report(site, teacher, class_id)
    assert rows == [
        ["studentId", "name", "email", first, second, "present", "absent", "late", "excused", "rate"],
        [ann.id, ann.name, ann.email, "present", "present", "2", "0", "0", "0", "1.0"],
        [bob.id, bob.name, bob.email, "absent", "present", "1", "1", "0", "0", "0.5"],
        # Cleo was not enrolled then: empty, not absent.
        [cleo.id, cleo.name, cleo.email, "", "absent", "0", "1", "0", "0", "0.0"],
    ]


def test_csv_of_a_class_without_sessions(site):
    teacher, student = site.person("teacher"), site.person("student")
    class_id = site.new_class(teacher, [student])
    rows, _ = assert_csv_matches_report(site, teacher, class_id)
    assert rows == [
        ["studentId", "name", "email", "present", "absent", "late", "excused", "rate"],
        [student.id, student.name, student.email, "0", "0", "0", "0", ""],
    ]


NASTY_NAMES = [
    'Smith, "Jo"',
    "Line\nbreak",
    "Cr\r\nlf",
    "=HYPERLINK(\"http://x\")",
    "+1+2",
    "-3",
    "@SUM(A1)",
    "Zoë Ångström 日本",
    "O'Brien; semi",
]


def test_csv_quotes_names_and_guards_formulas(site):
    teacher = site.person("teacher")
    students = [site.person("student", name) for name in NASTY_NAMES]
    tricky_email = site.person("student", "Email Trick", email=f"=cmd{secrets.token_hex(3)}@example.com")
    class_id = site.new_class(teacher, [*students, tricky_email])
    site.session(teacher, class_id, {students[0].id: "present", tricky_email.id: "present"})
    rows, report = assert_csv_matches_report(site, teacher, class_id)
    names = {row[0]: row[1] for row in rows[1:]}
    # The JSON keeps names exactly; the CSV escapes a leading formula character only.
    by_id = {s["_id"]: s["name"] for s in report["students"]}
    for student in students:
        assert by_id[student.id] == student.name
    assert names[students[3].id] == "'=HYPERLINK(\"http://x\")"
    assert names[students[4].id] == "'+1+2" and names[students[5].id] == "'-3" and names[students[6].id] == "'@SUM(A1)"
    assert names[students[0].id] == 'Smith, "Jo"' and names[students[1].id] == "Line\nbreak"
    assert names[students[7].id] == "Zoë Ångström 日本"
    assert {row[0]: row[2] for row in rows[1:]}[tricky_email.id] == "'" + tricky_email.email
    assert b"\r\n" in csv_of(site, teacher, class_id).content  # RFC 4180 line ends


FILENAME = re.compile(r"""attachment; filename="([ -~]*)"; filename\*=UTF-8''([A-Za-z0-9%!#$&+\-.^_`|~]+)""")


@pytest.mark.parametrize(
    ("class_name", "plain", "exact"),
    [
        ("Maths 101", "Maths 101-attendance.csv", "Maths 101-attendance.csv"),
        ("Mathématiques 1ère", "Mathematiques 1ere-attendance.csv", "Mathématiques 1ère-attendance.csv"),
        ('Say "hi"; then\\go', "Say _hi_ then_go-attendance.csv", 'Say "hi"; then_go-attendance.csv'),
        ("a/b", "a_b-attendance.csv", "a_b-attendance.csv"),
        ("日本語", "class-attendance.csv", "日本語-attendance.csv"),
        ("..", "class-attendance.csv", "class-attendance.csv"),
    ],
)
def test_csv_file_name_is_safe_for_any_class_name(site, class_name, plain, exact):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher, name=class_name)
    disposition = csv_of(site, teacher, class_id).headers["Content-Disposition"]
    match = FILENAME.fullmatch(disposition)
    assert match, disposition
    assert (match[1], unquote(match[2], errors="strict")) == (plain, exact)


# --- GET /class/:id/my-history -----------------------------------------------------------------------------


def test_my_history_newest_first_only_sessions_with_a_record(site, two_sessions):
    teacher, class_id, (ann, bob, cleo), (first, second) = two_sessions
    assert assert_ok(site.get(f"/class/{class_id}/my-history", bob)) == [
        {"startedAt": second, "status": "present", "remark": None},
        {"startedAt": first, "status": "absent", "remark": None},
    ]
    assert assert_ok(site.get(f"/class/{class_id}/my-history", cleo)) == [
        {"startedAt": second, "status": "absent", "remark": None}
    ]


def test_my_history_is_per_class(site, two_sessions):
    teacher, class_id, (ann, _, _), _ = two_sessions
    other_class = site.new_class(teacher, [ann])
    assert assert_ok(site.get(f"/class/{other_class}/my-history", ann)) == []


# --- GET /attendance/active --------------------------------------------------------------------------------


def test_active_session_until_done(site):
    teacher, ann, bob = site.person("teacher"), site.person("student"), site.person("student")
    other_teacher = site.person("teacher")
    class_id = site.new_class(teacher, [ann, bob])
    assert assert_ok(site.get("/attendance/active", teacher)) is None

    started_at = site.live(teacher, class_id, {ann.id: "present", bob.id: "absent"})
    active = assert_ok(site.get("/attendance/active", teacher))
    assert re.fullmatch("[0-9a-f]{24}", active.pop("sessionId"))  # the session's _id
    marks = active.pop("marks")
    assert active == {
        "classId": class_id,
        "startedAt": started_at,
        "attendance": {ann.id: "present", bob.id: "absent"},
        "checkIn": None,
    }
    assert {sid: (m["status"], m["remark"], m["by"], m["source"]) for sid, m in marks.items()} == {
        ann.id: ("present", None, teacher.id, "teacher"),
        bob.id: ("absent", None, teacher.id, "teacher"),
    }
    assert all(ISO_MS_Z.fullmatch(m["at"]) for m in marks.values())
    assert assert_ok(site.get("/attendance/active", other_teacher)) is None  # someone else's session

    site.done(teacher)
    assert assert_ok(site.get("/attendance/active", teacher)) is None


def test_active_session_after_a_restart_has_empty_marks(site):
    teacher, ann = site.person("teacher"), site.person("student")
    class_id = site.new_class(teacher, [ann])
    site.live(teacher, class_id, {ann.id: "present"})
    first = assert_ok(site.get("/attendance/active", teacher))["sessionId"]
    started_at = site.live(teacher, class_id)
    active = assert_ok(site.get("/attendance/active", teacher))
    assert active.pop("sessionId") != first  # a new session, not the old one emptied
    assert active == {
        "classId": class_id,
        "startedAt": started_at,
        "attendance": {},
        "marks": {},
        "checkIn": None,
    }


# --- Who may ask, and the order of checks (405 → 401 → 403 role → 400 query → 404 → 403 → 404 session) --------

# route → (path with {class} and {session}, role it needs, the 403 of a non-member)
ROUTES = {
    "sessions": ("/class/{class}/sessions", "teacher", NOT_CLASS_TEACHER),
    "session": ("/class/{class}/sessions/{session}", "teacher", NOT_CLASS_TEACHER),
    "report": ("/class/{class}/report", "teacher", NOT_CLASS_TEACHER),
    "csv": ("/class/{class}/report.csv", "teacher", NOT_CLASS_TEACHER),
    "history": ("/class/{class}/my-history", "student", NOT_ENROLLED),
}
ROLE_REQUIRED = {"teacher": TEACHER_REQUIRED, "student": STUDENT_REQUIRED}


def path_of(route, class_id, session_id=MISSING_ID):
    return ROUTES[route][0].format(**{"class": class_id, "session": session_id})


@pytest.mark.parametrize("route", [*ROUTES, "classes", "active"])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_wrong_method_is_405_before_auth(site, route, method):
    path = {"classes": "/classes", "active": "/attendance/active"}.get(route) or path_of(route, MISSING_ID)
    response = site.request(method, path)
    assert_error(response, 405, METHOD_NOT_ALLOWED)
    assert response.headers["Allow"] == "GET"


@pytest.mark.parametrize("route", [*ROUTES, "classes", "active"])
@pytest.mark.parametrize("token", [None, "garbage", "Bearer garbage"])
def test_without_a_valid_token_is_401_first(site, route, token):
    path = {"classes": "/classes", "active": "/attendance/active"}.get(route) or path_of(route, MISSING_ID)
    assert_error(site.get(path, token, limit="0"), 401, UNAUTHORIZED)


@pytest.mark.parametrize("route", [*ROUTES, "active"])
def test_wrong_role_is_403_before_query_and_existence(site, route):
    needs = "teacher" if route == "active" else ROUTES[route][1]
    wrong = site.person("student" if needs == "teacher" else "teacher")
    path = "/attendance/active" if route == "active" else path_of(route, MISSING_ID)
    assert_error(site.get(path, wrong, limit="0"), 403, ROLE_REQUIRED[needs])


def test_bad_query_is_400_before_the_class_is_looked_up(site):
    teacher = site.person("teacher")
    assert_error(site.get(path_of("sessions", MISSING_ID), teacher, limit="0"), 400, INVALID_SCHEMA)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("class_id", [MISSING_ID, *MALFORMED_IDS[:2]])
def test_unknown_class_is_404(site, route, class_id):
    caller = site.person(ROUTES[route][1])
    assert_error(site.get(path_of(route, class_id, "not-a-session"), caller), 404, CLASS_NOT_FOUND)


@pytest.mark.parametrize("route", ROUTES)
def test_a_non_member_is_403_before_the_session_is_looked_up(site, two_sessions, route):
    """A teacher of another class, or a student of another class, asking about this one."""
    _, class_id, _, _ = two_sessions
    other_teacher, other_student = site.person("teacher"), site.person("student")
    site.new_class(other_teacher, [other_student])
    caller = other_teacher if ROUTES[route][1] == "teacher" else other_student
    assert_error(site.get(path_of(route, class_id, "not-a-session"), caller), 403, ROUTES[route][2])


@pytest.mark.parametrize("route", [r for r in ROUTES if ROUTES[r][1] == "teacher"])
def test_an_enrolled_student_may_not_read_the_teachers_routes(site, two_sessions, route):
    _, class_id, (ann, _, _), _ = two_sessions
    session_id = sessions_of(site, two_sessions[0], class_id)[0]["_id"]
    assert_error(site.get(path_of(route, class_id, session_id), ann), 403, TEACHER_REQUIRED)


def test_the_class_teacher_may_not_read_a_students_history(site, two_sessions):
    teacher, class_id, _, _ = two_sessions
    assert_error(site.get(path_of("history", class_id), teacher), 403, STUDENT_REQUIRED)


@pytest.mark.parametrize("route", ROUTES)
def test_trailing_slash_is_404(site, two_sessions, route):
    teacher, class_id, (ann, _, _), _ = two_sessions
    caller = teacher if ROUTES[route][1] == "teacher" else ann
    assert_error(site.get(path_of(route, class_id) + "/", caller), 404, NOT_FOUND)


def test_errors_of_the_csv_route_are_json(site, two_sessions):
    _, class_id, (ann, _, _), _ = two_sessions
    response = site.get(path_of("csv", class_id), ann)
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Content-Disposition" not in response.headers
    assert_error(response, 403, TEACHER_REQUIRED)
