"""History and reports, in-process only: query counts, what counts as persisted, the endedAt migration, and
the pieces (file names, CSV cells, the sessions query, the name order). The scenarios that also run over
the wire are in test_history.py."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta

import openpyxl
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from classes.models import Enrollment
from common import prepared
from common.api import validate
from common.downloads import ascii_filename, content_disposition, utf8_filename
from common.errors import Invalid
from live import history
from live.models import Attendance, AttendanceSession
from live.schemas import SessionsQuery
from tests.support import (
    NOT_ENROLLED,
    SESSION_NOT_FOUND,
    assert_error,
    assert_ok,
    auth,
    count_queries,
    make_class,
    make_user,
    make_users,
    persist_session,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)


def add_sessions(klass, students, count, *, first=0, committed=True):
    """`count` persisted sessions of the class, a day apart, everyone present on even days, written in bulk."""
    sessions, records = [], []
    for day in range(first, first + count):
        started_at = T0 + timedelta(days=day)
        ended = started_at + timedelta(minutes=50)
        state = "persisted" if committed else "persisting"
        session = AttendanceSession(
            klass=klass, teacher_id=klass.teacher_id, state=state, started_at=started_at, updated_at=ended,
            ended_at=ended,
        )
        sessions.append(session)
        status = "present" if day % 2 == 0 else "absent"
        records += [
            Attendance(session=session, klass=klass, student=s, status=status, started_at=started_at) for s in students
        ]
    AttendanceSession.objects.bulk_create(sessions)
    Attendance.objects.bulk_create(records, batch_size=2000)
    return sessions


# --- the number of queries does not grow with students or sessions ---------------------------------------

ROUTES = {
    "sessions": "/class/{c}/sessions",
    "session": "/class/{c}/sessions/{s}",
    "report": "/class/{c}/report",
    "csv": "/class/{c}/report.csv",
    "xlsx": "/class/{c}/report.xlsx?tz=Europe/Paris",
    "period": "/class/{c}/report?from=2025-01-01T00:00:00Z&to=2030-01-01T00:00:00Z",
    "sessions-period": "/class/{c}/sessions?from=2025-01-01T00:00:00Z",
    "history": "/class/{c}/my-history",
    "summary": "/class/{c}/my-summary",
}
STUDENT_ROUTES = {"history", "summary"}


@pytest.mark.parametrize("route", ROUTES)
def test_query_count_does_not_grow_with_students_or_sessions(client, teacher, student, route):
    klass = make_class(teacher, [student])
    [session] = add_sessions(klass, [student], 1)
    path = ROUTES[route].format(c=klass.id, s=session.id)
    caller = student if route in STUDENT_ROUTES else teacher

    def queries():
        return count_queries(lambda: client.get(path, headers=auth(caller)))

    one = queries()
    others = make_users("student", 29)
    Enrollment.objects.bulk_create([Enrollment(klass=klass, student=other) for other in others])
    Attendance.objects.bulk_create(
        [
            Attendance(session=session, klass=klass, student=o, status="present", started_at=session.started_at)
            for o in others
        ]
    )
    assert queries() == one, "grew with students"
    add_sessions(klass, [student, *others], 19, first=1)
    assert queries() == one, "grew with sessions"
    # ...and the answer did grow.
    if route in ("report", "period"):
        data = assert_ok(client.get(path, headers=auth(teacher)))
        assert data["sessions"] == 20
        # Odd days absent, the last (day 19) too: a run of 1 for everyone, and a rate of 0.5 below 0.8.
        assert {(s["consecutiveAbsences"], s["atRisk"]) for s in data["students"]} == {(1, True)}
    if route == "summary":
        assert assert_ok(client.get(path, headers=auth(student)))["absent"] == 10
    if route == "xlsx":
        book = openpyxl.load_workbook(io.BytesIO(client.get(path, headers=auth(teacher)).content))
        assert book["Attendance"].max_row == 31 and book["Sessions"].max_row == 21
    if route == "csv":
        assert client.get(path, headers=auth(teacher)).content.count(b"\r\n") == 31


@pytest.mark.parametrize("count", [prepared.MAX_LIST, prepared.MAX_LIST + 1])
def test_standings_are_the_records_counted_whether_prepared_or_not(teacher, count):
    """Up to MAX_LIST sessions the counts and runs come from queries compiled once, past it from the ORM: both
    say what the records say (counted here one by one, oldest first)."""
    students = make_users("student", 5)
    klass = make_class(teacher, students)
    sessions = add_sessions(klass, students, count)
    statuses = ["present", "absent", "late", "excused"]
    shuffle = random.Random(count)  # fixed: the same statuses every run
    for record in Attendance.objects.filter(klass=klass).order_by("started_at", "student_id"):
        record.status = shuffle.choices(statuses, weights=[2, 5, 1, 1])[0]
        record.save(update_fields=["status"])
    expected = {}
    for student in students:
        rows = Attendance.objects.filter(klass=klass, student=student).order_by("started_at")
        counts = {status: sum(r.status == status for r in rows) for status in statuses}
        run = 0
        for r in rows:
            run = 0 if r.status in ("present", "late") else run + (r.status == "absent")
        expected[student.id] = (*counts.values(), run)
    found = history.standings(klass, [(s.id, s.started_at) for s in sessions])
    got = {sid: (s.present, s.absent, s.late, s.excused, s.consecutive_absences) for sid, s in found.items()}
    assert got == expected
    assert any(run > 0 for *_, run in expected.values()) and any(run == 0 for *_, run in expected.values())
    mine = history.standings(klass, [(s.id, s.started_at) for s in sessions], students[0].id)
    assert list(mine) == [students[0].id] and mine[students[0].id] == found[students[0].id]
    # Which path ran: compiled once on SQL up to MAX_LIST sessions, the ORM's past it (and on MongoDB).
    compiled = [entry for key, entry in history._counts._compiled.items() if key[1] == (-1, count)]
    orm_only = count > prepared.MAX_LIST
    assert len(compiled) == (0 if orm_only else 1)
    assert all((entry is None) is (connection.vendor == "mongodb") for entry in compiled)


# --- what counts: persisted sessions only ----------------------------------------------------------------


def test_a_session_being_persisted_counts_nowhere(client, teacher, student):
    klass = make_class(teacher, [student])
    add_sessions(klass, [student], 1)
    [pending] = add_sessions(klass, [student], 1, first=1, committed=False)  # records written, not committed
    sessions = assert_ok(client.get(f"/class/{klass.id}/sessions", headers=auth(teacher)))
    assert len(sessions) == 1 and sessions[0]["startedAt"] == "2025-03-10T08:00:00.000Z"
    assert_error(client.get(f"/class/{klass.id}/sessions/{pending.id}", headers=auth(teacher)), 404, SESSION_NOT_FOUND)
    report = assert_ok(client.get(f"/class/{klass.id}/report", headers=auth(teacher)))
    assert report["sessions"] == 1 and (report["students"][0]["present"], report["students"][0]["absent"]) == (1, 0)
    header = client.get(f"/class/{klass.id}/report.csv", headers=auth(teacher)).content.split(b"\r\n")[0]
    assert header == b"studentId,name,email,2025-03-10T08:00:00.000Z,present,absent,late,excused,rate"
    history_ = assert_ok(client.get(f"/class/{klass.id}/my-history", headers=auth(student)))
    assert history_ == [{"startedAt": "2025-03-10T08:00:00.000Z", "status": "present", "remark": None}]


def test_a_student_who_left_stays_in_the_report_but_loses_their_history(client, teacher, student):
    stays = make_user("student", name="Stays")
    klass = make_class(teacher, [student, stays])
    [session] = add_sessions(klass, [student, stays], 1)
    Enrollment.objects.filter(klass=klass, student=student).delete()
    report = assert_ok(client.get(f"/class/{klass.id}/report", headers=auth(teacher)))
    assert [(s["_id"], s["present"]) for s in report["students"]] == [(student.id, 1), (stays.id, 1)]
    detail = assert_ok(client.get(f"/class/{klass.id}/sessions/{session.id}", headers=auth(teacher)))
    assert {r["studentId"] for r in detail["records"]} == {student.id, stays.id}
    rows = client.get(f"/class/{klass.id}/report.csv", headers=auth(teacher)).content.decode().split("\r\n")
    assert rows[1].startswith(f"{student.id},Sam Student,")
    assert_error(client.get(f"/class/{klass.id}/my-history", headers=auth(student)), 403, NOT_ENROLLED)


def test_ended_at_of_a_session_committed_without_one_is_its_start(client, teacher, student):
    """A worker older than endedAt (a rolling upgrade) commits without it: shown as startedAt, never a 500."""
    klass = make_class(teacher, [student])
    [session] = add_sessions(klass, [student], 1)
    AttendanceSession.objects.filter(pk=session.pk).update(ended_at=None)
    [listed] = assert_ok(client.get(f"/class/{klass.id}/sessions", headers=auth(teacher)))
    assert listed["endedAt"] == listed["startedAt"]
    detail = assert_ok(client.get(f"/class/{klass.id}/sessions/{session.id}", headers=auth(teacher)))
    assert detail["endedAt"] == detail["startedAt"]


def test_persist_session_sets_ended_at_when_it_commits(teacher, student):
    klass = make_class(teacher, [student])
    before = datetime.now(tz=UTC) - timedelta(milliseconds=1)  # ended_at is to the millisecond
    persist_session(teacher, klass.id, "2025-03-11T10:00:00.000Z", {student.id: "present"})
    session = AttendanceSession.objects.get(klass=klass)
    assert session.state == "persisted"
    assert before <= session.ended_at <= datetime.now(tz=UTC) + timedelta(milliseconds=1)


@pytest.mark.django_db(transaction=True)
def test_migration_gives_old_sessions_their_start_as_end():
    executor = MigrationExecutor(connection)
    executor.migrate([("live", "0002_attendancesession"), ("classes", "0001_initial")])
    old = executor.loader.project_state([("live", "0002_attendancesession"), ("classes", "0001_initial")]).apps
    user = old.get_model("accounts", "User").objects.create(email="t@example.com", name="T", role="teacher")
    klass = old.get_model("classes", "Class").objects.create(class_name="C", teacher_id=user.pk)
    OldSession = old.get_model("live", "AttendanceSession")
    done = OldSession.objects.create(klass_id=klass.pk, started_at=T0, committed=True)
    pending = OldSession.objects.create(klass_id=klass.pk, started_at=T0 + timedelta(days=1), committed=False)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert AttendanceSession.objects.get(pk=done.pk).ended_at == T0
    assert AttendanceSession.objects.get(pk=pending.pk).ended_at is None


# --- the pieces ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("a=b", "a=b")],
)
def test_csv_cell_escapes_a_leading_formula_character(value, expected):
    assert history.csv_cell(value) == expected


def test_csv_guards_names_the_api_cannot_create(client, teacher):
    """Leading tab or CR: signup trims them, the admin or a script may not."""
    tabbed = make_user("student", name="\tTabbed")
    klass = make_class(teacher, [tabbed])
    add_sessions(klass, [tabbed], 1)
    assert b"'\tTabbed" in client.get(f"/class/{klass.id}/report.csv", headers=auth(teacher)).content


@pytest.mark.parametrize(
    ("stem", "plain", "exact"),
    [
        ("Ünïcödé", "Unicode", "Ünïcödé"),
        ("tab\there\nnewline", "tab here newline", "tab here newline"),
        ("!!!", "download", "download"),
        ("a/b\\c", "a_b_c", "a_b_c"),
        ("  spaced   out  ", "spaced out", "spaced out"),
        ("x" * 300, "x" * 100, "x" * 100),
        ("zero\u200bwidth\x00", "zerowidth", "zerowidth"),
        ("\u200b", "download", "download"),
    ],
)
def test_file_names(stem, plain, exact):
    assert ascii_filename(stem) == plain
    assert utf8_filename(stem) == exact


def test_content_disposition_has_both_names():
    expected = "attachment; filename=\"Ca va-x.csv\"; filename*=UTF-8''%C3%87a%20va-x.csv"
    assert content_disposition("Ça va", "-x.csv") == expected


@pytest.mark.parametrize(
    ("query", "limit", "before"),
    [
        ({}, 100, None),
        ({"limit": "1"}, 1, None),
        ({"limit": "500"}, 500, None),
        ({"before": "2025-03-11T10:00:00.000Z"}, 100, datetime(2025, 3, 11, 10, tzinfo=UTC)),
        ({"before": "2025-03-11T12:00:00+02:00"}, 100, datetime(2025, 3, 11, 10, tzinfo=UTC)),
        ({"before": "2025-03-11T10:00:00"}, 100, datetime(2025, 3, 11, 10, tzinfo=UTC)),
        ({"before": "2025-03-11 10:00"}, 100, datetime(2025, 3, 11, 10, tzinfo=UTC)),
    ],
)
def test_sessions_query_parses(query, limit, before):
    parsed = validate(SessionsQuery, query)
    assert (parsed.limit, parsed.before) == (limit, before)


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "1_0"},
        {"limit": "+5"},
        {"limit": "0x10"},
        {"before": "2025-03-11T10"},
        {"before": "2025-03-11T10:00:00+25:00"},
        {"before": "2025-03-11T10:00:61Z"},
    ],
)
def test_sessions_query_refuses(query):
    with pytest.raises(Invalid):
        validate(SessionsQuery, query)


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        ("0001-01-01T00:00:00+01:00", datetime.min.replace(tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999-01:00", datetime.max.replace(tzinfo=UTC)),
        ("2025-03-11t10:00:00.5-05:30", datetime(2025, 3, 11, 15, 30, 0, 500000, tzinfo=UTC)),
    ],
)
def test_sessions_query_takes_any_moment(client, teacher, before, expected):
    assert validate(SessionsQuery, {"before": before}).before == expected
    klass = make_class(teacher)
    add_sessions(klass, [], 1)
    sessions = assert_ok(client.get(f"/class/{klass.id}/sessions", {"before": before}, headers=auth(teacher)))
    assert len(sessions) == (0 if expected.year == 1 else 1)


def test_before_finer_than_a_millisecond_rounds_up(teacher):
    klass = make_class(teacher)
    add_sessions(klass, [], 2)
    just_after_the_second = T0 + timedelta(days=1, microseconds=1)
    assert [s.startedAt for s in history.sessions_page(klass, 10, just_after_the_second)] == [
        T0 + timedelta(days=1),
        T0,
    ]
    assert [s.startedAt for s in history.sessions_page(klass, 10, T0 + timedelta(days=1))] == [T0]


def test_attendance_rate():
    assert [history.attendance_rate(p, a) for p, a in [(0, 0), (1, 0), (0, 3), (2, 1), (1, 2), (1, 7)]] == [
        None,
        1.0,
        0.0,
        0.6667,
        0.3333,
        0.125,
    ]


def test_a_cross_origin_client_may_read_the_history_and_the_csv_file_name(client, settings, teacher):
    settings.CORS_ALLOWED_ORIGINS = ["https://console.example"]
    klass = make_class(teacher, name="Maths")
    origin = {"Origin": "https://console.example", **auth(teacher)}
    for path in ("/classes", f"/class/{klass.id}/report"):
        assert client.get(path, headers=origin).headers["Access-Control-Allow-Origin"] == "https://console.example"
    response = client.get(f"/class/{klass.id}/report.csv", headers=origin)
    assert response.headers["Access-Control-Allow-Origin"] == "https://console.example"
    assert "content-disposition" in response.headers["Access-Control-Expose-Headers"].lower()
    assert "Access-Control-Allow-Origin" not in client.get("/classes", headers={**origin, "Origin": "https://evil.example"}).headers


# --- the Excel writer's memory does not grow with the class ------------------------------------------------------


def test_the_workbook_writer_streams_its_rows(monkeypatch):
    """openpyxl's write-only mode: beyond the report's own table and the file's bytes, what writing takes is the
    same for 50 students as for 500 (× 60 sessions)."""
    import tracemalloc
    from zoneinfo import ZoneInfo

    from classes.models import Class
    from live import workbook

    def table(students: int, sessions: int = 60) -> history.Grid:
        return history.Grid(
            sessions=[(T0 + timedelta(days=d), T0 + timedelta(days=d, hours=1)) for d in range(sessions)],
            students=[
                (f"{n:024x}", f"Student {n}", f"s{n}@example.com", ["present" if (n + d) % 3 else "absent"
                                                                   for d in range(sessions)])
                for n in range(students)
            ],
        )

    def writing(students: int) -> tuple[int, int]:
        grid = table(students)
        monkeypatch.setattr(workbook, "report_grid", lambda klass, period: grid)
        tracemalloc.start()
        try:
            content = workbook.report_xlsx(Class(class_name="Big"), ZoneInfo("UTC"), history.EVER)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return peak - len(content), len(content)

    writing(10)  # openpyxl's imports and caches, once
    small, small_file = writing(50)
    big, big_file = writing(500)
    assert big_file > 5 * small_file  # ten times the rows...
    assert big < small * 1.5 + 256 * 1024, (small, big)  # ...and not more memory to write them
