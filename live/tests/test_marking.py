"""Marking as teachers take it (docs/api.md): four statuses, remarks (never broadcast), MARK_ALL (fills blanks
only), ATTENDANCE_CLEARED, the summaries' late/excused, corrections after DONE and the change log. Socket
scenarios run in-process and over the wire (`live_site`), HTTP ones both ways (`site`)."""

from __future__ import annotations

from typing import Any

import pytest

from live import commands, selectors
from live.models import Attendance, AttendanceChange
from tests.support import (
    CLASS_NOT_FOUND,
    INVALID_FORMAT,
    MISSING_ID,
    NO_SESSION,
    NOT_CLASS_TEACHER,
    TEACHER_ONLY,
    WireSite,
    assert_error,
    assert_ok,
    cleared,
    done,
    frame,
    make_class,
    make_user,
    mark_all,
    marked,
    my_status,
    needs_threads,
    recv_all,
    summary,
)

SESSION_NOT_FOUND = "Session not found"
STUDENT_NOT_FOUND = "Student not found"
TEACHER_REQUIRED = "Forbidden, teacher access required"
INVALID_SCHEMA = "Invalid request schema"


async def everyone(room, expected: dict[str, Any]) -> None:
    await recv_all(expected, room.teacher_ws, *room.student_ws)


async def active(live_site, room) -> dict[str, Any]:
    return assert_ok(await live_site._run(live_site.site.get, "/attendance/active", room.teacher))


# --- the socket -------------------------------------------------------------------------------------------


async def test_four_statuses_and_remarks_that_are_never_broadcast(live_site, live_room):
    room = live_room
    ann, bob, cleo = (s.id for s in room.students)
    await room.teacher_ws.send(frame("ATTENDANCE_MARKED", {"studentId": ann, "status": "late", "remark": "  bus  "}))
    await everyone(room, marked(ann, "late"))  # exactly {studentId, status}: no remark
    await room.teacher_ws.send(frame("ATTENDANCE_MARKED", {"studentId": bob, "status": "excused", "remark": "ill"}))
    await everyone(room, marked(bob, "excused"))
    await room.teacher_ws.send(frame("ATTENDANCE_MARKED", {"studentId": cleo, "status": "present"}))
    await everyone(room, marked(cleo, "present"))
    marks = (await active(live_site, room))["marks"]
    assert {sid: (m["status"], m["remark"], m["by"], m["source"]) for sid, m in marks.items()} == {
        ann: ("late", "bus", room.teacher.id, "teacher"),
        bob: ("excused", "ill", room.teacher.id, "teacher"),
        cleo: ("present", None, room.teacher.id, "teacher"),
    }
    # A mark without a remark keeps it; "" clears it.
    await room.teacher_ws.send(frame("ATTENDANCE_MARKED", {"studentId": ann, "status": "absent"}))
    await everyone(room, marked(ann, "absent"))
    await room.teacher_ws.send(frame("ATTENDANCE_MARKED", {"studentId": bob, "status": "excused", "remark": ""}))
    await everyone(room, marked(bob, "excused"))
    marks = (await active(live_site, room))["marks"]
    assert (marks[ann]["status"], marks[ann]["remark"], marks[bob]["remark"]) == ("absent", "bus", None)

    assert await room.student_ws[1].ask(frame("MY_ATTENDANCE")) == my_status("excused")
    assert await room.teacher_ws.ask(frame("TODAY_SUMMARY")) == summary(1, 1, excused=1)
    await recv_all(summary(1, 1, excused=1), *room.student_ws)


async def test_remark_over_500_characters_is_refused(live_site, live_room):
    room = live_room
    student = room.students[0].id
    text = frame("ATTENDANCE_MARKED", {"studentId": student, "status": "late", "remark": "x" * 501})
    assert await room.teacher_ws.ask(text) == error_of(INVALID_FORMAT)
    fits = frame("ATTENDANCE_MARKED", {"studentId": student, "status": "late", "remark": " " + "x" * 500 + " "})
    assert await room.teacher_ws.ask(fits) == marked(student, "late")
    assert (await active(live_site, room))["marks"][student]["remark"] == "x" * 500


def error_of(message: str) -> dict[str, Any]:
    return {"event": "ERROR", "data": {"message": message}}


async def test_mark_all_fills_only_the_blanks_in_enrolment_order_with_one_broadcast(live_site, live_room):
    room = live_room
    ann, bob, cleo = (s.id for s in room.students)
    await room.teacher_ws.send(frame("ATTENDANCE_MARKED", {"studentId": bob, "status": "absent", "remark": "r"}))
    await everyone(room, marked(bob, "absent"))
    await room.teacher_ws.send(frame("MARK_ALL"))
    await everyone(room, mark_all("present", [ann, cleo]))
    marks = (await active(live_site, room))["marks"]
    assert {sid: m["status"] for sid, m in marks.items()} == {ann: "present", bob: "absent", cleo: "present"}
    assert marks[bob]["remark"] == "r"
    await room.teacher_ws.send(frame("MARK_ALL", {"status": "late"}))
    await everyone(room, mark_all("late", []))  # nothing left blank: overwrites nothing
    assert await room.teacher_ws.ask(frame("DONE")) == done(2, 1, 3)


async def test_mark_all_with_a_status_and_done_counts_late_and_excused(live_site, live_room):
    room = live_room
    ann, bob, cleo = (s.id for s in room.students)
    await room.teacher_ws.send(frame("ATTENDANCE_MARKED", {"studentId": ann, "status": "excused"}))
    await everyone(room, marked(ann, "excused"))
    await room.teacher_ws.send(frame("MARK_ALL", {"status": "late"}))
    await everyone(room, mark_all("late", [bob, cleo]))
    assert await room.teacher_ws.ask(frame("TODAY_SUMMARY")) == summary(0, 0, late=2, excused=1)
    await recv_all(summary(0, 0, late=2, excused=1), *room.student_ws)
    assert await room.teacher_ws.ask(frame("DONE")) == done(0, 0, 3, late=2, excused=1)


async def test_attendance_cleared_unmarks_and_removes_the_remark(live_site, live_room):
    room = live_room
    ann = room.students[0].id
    await room.teacher_ws.send(frame("ATTENDANCE_MARKED", {"studentId": ann, "status": "late", "remark": "bus"}))
    await everyone(room, marked(ann, "late"))
    await room.teacher_ws.send(frame("ATTENDANCE_CLEARED", {"studentId": ann}))
    await everyone(room, cleared(ann))
    assert await room.student_ws[0].ask(frame("MY_ATTENDANCE")) == my_status("not yet updated")
    state = await active(live_site, room)
    assert state["marks"] == {} and state["attendance"] == {}
    # Marked again without a remark: the old remark is gone for good.
    await room.teacher_ws.send(frame("ATTENDANCE_MARKED", {"studentId": ann, "status": "present"}))
    await everyone(room, marked(ann, "present"))
    assert (await active(live_site, room))["marks"][ann]["remark"] is None


@pytest.mark.parametrize("data", [{"studentId": MISSING_ID}, {"studentId": "nope"}])
async def test_attendance_cleared_of_an_unenrolled_student(live_room, data):
    assert await live_room.teacher_ws.ask(frame("ATTENDANCE_CLEARED", data)) == error_of(STUDENT_NOT_FOUND)


@pytest.mark.parametrize(
    ("event", "data"),
    [
        ("MARK_ALL", {"status": "tardy"}),
        ("MARK_ALL", {"status": None}),
        ("MARK_ALL", 5),
        ("ATTENDANCE_CLEARED", {}),
        ("ATTENDANCE_CLEARED", {"studentId": ""}),
        ("ATTENDANCE_CLEARED", {"studentId": 5}),
        ("ATTENDANCE_CLEARED", None),
    ],
)
async def test_new_events_bad_payloads(live_room, event, data):
    assert await live_room.teacher_ws.ask(frame(event, data)) == error_of(INVALID_FORMAT)


@pytest.mark.parametrize("event", ["MARK_ALL", "ATTENDANCE_CLEARED"])
async def test_new_events_check_role_then_session_then_payload(live_site, event):
    room = await live_site.classroom(1)
    student_ws = await live_site.open(room.students[0])
    teacher_ws = await live_site.open(room.teacher)
    assert await student_ws.ask(frame(event, "not an object")) == error_of(TEACHER_ONLY)  # role first
    assert await teacher_ws.ask(frame(event, "not an object")) == error_of(NO_SESSION)  # then the session


# --- HTTP: corrections and the change log ---------------------------------------------------------------


def patch(site, path: str, who: Any, body: Any = ...) -> Any:
    return site.request("PATCH", path, who, body=body)


@pytest.fixture
def persisted(site):
    """A persisted session: Ann late with a remark, Bob made absent by DONE."""
    teacher = site.person("teacher")
    ann, bob = site.person("student", "Ann Archer"), site.person("student", "Bob Baker")
    class_id = site.new_class(teacher, [ann, bob], name="History")
    site.live(teacher, class_id)
    ws_marks(site, teacher, ann.id)
    site.done(teacher)
    [session] = assert_ok(site.get(f"/class/{class_id}/sessions", teacher))
    return teacher, class_id, session["_id"], ann, bob


def ws_marks(site, teacher, student_id: str) -> None:
    """Ann late with remark "bus", by the socket (in-process: the same command)."""
    if site.mode == "local":
        commands.mark_attendance(selectors.active_session(teacher.id), student_id, "late", teacher.id, None, "bus")
        return
    with site._socket(teacher) as ws:
        ws.send(frame("ATTENDANCE_MARKED", {"studentId": student_id, "status": "late", "remark": "bus"}))
        ws.recv(timeout=5)


def test_records_carry_remark_who_and_how(site, persisted):
    teacher, class_id, session_id, ann, bob = persisted
    detail = assert_ok(site.get(f"/class/{class_id}/sessions/{session_id}", teacher))
    assert (detail["late"], detail["absent"], detail["total"]) == (1, 1, 2)
    records = {r["studentId"]: r for r in detail["records"]}
    shown = {sid: (r["status"], r["remark"], r["source"]) for sid, r in records.items()}
    assert shown == {ann.id: ("late", "bus", "teacher"), bob.id: ("absent", None, "done")}
    assert {r["by"] for r in records.values()} == {teacher.id}
    assert assert_ok(site.get(f"/class/{class_id}/my-history", ann))[0]["remark"] == "bus"
    [row] = [s for s in assert_ok(site.get(f"/class/{class_id}/report", teacher))["students"] if s["_id"] == ann.id]
    assert (row["present"], row["late"], row["absent"], row["excused"], row["rate"]) == (0, 1, 0, 0, 1.0)


def test_a_correction_shows_everywhere_at_once_and_is_logged(site, persisted):
    teacher, class_id, session_id, ann, bob = persisted
    path = f"/class/{class_id}/sessions/{session_id}/records/{bob.id}"
    record = assert_ok(patch(site, path, teacher, {"status": "excused", "remark": "  doctor "}))
    assert record.pop("at") and record == {
        "studentId": bob.id,
        "name": bob.name,
        "email": bob.email,
        "status": "excused",
        "remark": "doctor",
        "by": teacher.id,
        "source": "correction",
    }
    assert assert_ok(site.get(f"/class/{class_id}/my-attendance", bob))["status"] == "excused"
    assert assert_ok(site.get(f"/class/{class_id}/my-history", bob))[0] == {
        "startedAt": assert_ok(site.get(f"/class/{class_id}/sessions", teacher))[0]["startedAt"],
        "status": "excused",
        "remark": "doctor",
    }
    [row] = [s for s in assert_ok(site.get(f"/class/{class_id}/report", teacher))["students"] if s["_id"] == bob.id]
    assert (row["absent"], row["excused"], row["rate"]) == (0, 1, None)  # excused is left out of the rate
    csv_rows = site.get(f"/class/{class_id}/report.csv", teacher).content.decode().splitlines()
    assert csv_rows[0].endswith(",present,absent,late,excused,rate")
    assert [line for line in csv_rows if line.startswith(bob.id)][0].endswith(",excused,0,0,0,1,")
    # Without a remark the correction keeps it.
    assert assert_ok(patch(site, path, teacher, {"status": "late"}))["remark"] == "doctor"
    changes = assert_ok(site.get(f"/class/{class_id}/sessions/{session_id}/changes", teacher))
    assert [(c["studentId"], c["status"], c["remark"], c["source"]) for c in changes] == [
        (ann.id, "late", "bus", "teacher"),
        (bob.id, "absent", None, "done"),
        (bob.id, "excused", "doctor", "correction"),
        (bob.id, "late", "doctor", "correction"),
    ]
    assert {c["by"] for c in changes} == {teacher.id}


def test_the_change_log_includes_live_changes_and_clears(site):
    teacher, ann = site.person("teacher"), site.person("student")
    class_id = site.new_class(teacher, [ann])
    site.live(teacher, class_id, {ann.id: "present"})
    session_id = assert_ok(site.get("/attendance/active", teacher))["sessionId"]
    if site.mode == "local":
        commands.clear_mark(selectors.active_session(teacher.id), ann.id, teacher.id)
    else:
        with site._socket(teacher) as ws:
            ws.send(frame("ATTENDANCE_CLEARED", {"studentId": ann.id}))
            ws.recv(timeout=5)
    changes = assert_ok(site.get(f"/class/{class_id}/sessions/{session_id}/changes", teacher))
    shown = [(c["status"], c["remark"], c["source"]) for c in changes]
    assert shown == [("present", None, "teacher"), (None, None, "teacher")]


def test_correction_check_order(site, persisted):
    teacher, class_id, session_id, ann, bob = persisted
    other = site.person("teacher")
    good = {"status": "present"}
    path = f"/class/{class_id}/sessions/{session_id}/records/{ann.id}"
    assert_error(patch(site, path, None, good), 401, "Unauthorized, token missing or invalid")
    assert_error(patch(site, path, ann, {"status": "bad"}), 403, TEACHER_REQUIRED)  # role before schema
    sessions = f"/class/{class_id}/sessions"
    bad = {"status": "bad"}
    assert_error(patch(site, f"/class/{MISSING_ID}/sessions/x/records/y", other, bad), 400, INVALID_SCHEMA)
    long_remark = {"status": "present", "remark": "x" * 501}
    for body in ({}, {"status": "PRESENT"}, long_remark, {"status": "late", "remark": 1}):
        assert_error(patch(site, path, teacher, body), 400, INVALID_SCHEMA)
    missing_class = f"/class/{MISSING_ID}/sessions/{session_id}/records/{ann.id}"
    assert_error(patch(site, missing_class, teacher, good), 404, CLASS_NOT_FOUND)
    assert_error(patch(site, path, other, good), 403, NOT_CLASS_TEACHER)  # another teacher cannot correct
    assert_error(patch(site, f"{sessions}/{MISSING_ID}/records/x", teacher, good), 404, SESSION_NOT_FOUND)
    for student in (MISSING_ID, "nope", teacher.id):
        assert_error(patch(site, f"{sessions}/{session_id}/records/{student}", teacher, good), 404, STUDENT_NOT_FOUND)
    assert_error(site.get(path, teacher), 405, "Method not allowed")
    # Nothing of the refused attempts was applied or logged.
    changes = assert_ok(site.get(f"/class/{class_id}/sessions/{session_id}/changes", teacher))
    assert [c["source"] for c in changes] == ["teacher", "done"]


def test_change_log_check_order(site, persisted):
    teacher, class_id, session_id, ann, _ = persisted
    other = site.person("teacher")
    path = f"/class/{class_id}/sessions/{session_id}/changes"
    assert_error(site.get(path, None), 401, "Unauthorized, token missing or invalid")
    assert_error(site.get(path, ann), 403, TEACHER_REQUIRED)
    assert_error(site.get(f"/class/{MISSING_ID}/sessions/{session_id}/changes", teacher), 404, CLASS_NOT_FOUND)
    assert_error(site.get(path, other), 403, NOT_CLASS_TEACHER)  # another teacher cannot read it
    assert_error(site.get(f"/class/{class_id}/sessions/{MISSING_ID}/changes", teacher), 404, SESSION_NOT_FOUND)
    assert_error(site.get(f"/class/{class_id}/sessions/nope/changes", teacher), 404, SESSION_NOT_FOUND)
    assert_error(site.post(path, {}, teacher), 405, "Method not allowed")


# --- races and the rules, on the database ------------------------------------------------------------------


@pytest.fixture
def room(db):
    teacher = make_user("teacher")
    students = [make_user("student") for _ in range(3)]
    return teacher, make_class(teacher, students), students


def test_mark_all_never_overwrites_a_mark_made_after_its_session_was_read(room):
    """The session value MARK_ALL acts on was read before a concurrent mark: the database decides, not it."""
    teacher, klass, students = room
    session = commands.start_session(teacher, klass.id)
    read_before = selectors.active_session(teacher.id)
    commands.mark_attendance(session, students[1].id, "absent", teacher.id, None, "late bus")
    assert commands.mark_all(read_before, "present", teacher.id) == [students[0].id, students[2].id]
    marks = selectors.active_session(teacher.id).attendance
    assert marks == {students[0].id: "present", students[1].id: "absent", students[2].id: "present"}
    log = list(AttendanceChange.objects.filter(session_id=session.id).values_list("student_id", "status"))
    assert log == [(students[1].id, "absent"), (students[0].id, "present"), (students[2].id, "present")]


def test_mark_all_of_an_ended_session_applies_nothing(room):
    teacher, klass, _ = room
    session = commands.start_session(teacher, klass.id)
    commands.finish_session(session)
    with pytest.raises(Exception, match=NO_SESSION):
        commands.mark_all(session, "present", teacher.id)
    assert not AttendanceChange.objects.filter(session_id=session.id, source="teacher").exists()


def test_two_corrections_are_both_logged_and_the_last_wins(room):
    teacher, klass, students = room
    session = commands.start_session(teacher, klass.id)
    commands.finish_session(session)
    commands.correct_record(teacher, klass.id, session.id, students[0].id, "late", "a")
    commands.correct_record(teacher, klass.id, session.id, students[0].id, "excused", None)
    record = Attendance.objects.get(session_id=session.id, student_id=students[0].id)
    assert (record.status, record.remark, record.source, record.by) == ("excused", "a", "correction", teacher.id)
    log = AttendanceChange.objects.filter(session_id=session.id, student_id=students[0].id).values_list(
        "status", "source"
    )
    assert list(log) == [("absent", "done"), ("late", "correction"), ("excused", "correction")]


def test_rate_rule():
    from live.history import attendance_rate

    assert attendance_rate(1, 1, 1) == 0.6667  # (present + late) / (present + late + absent)
    assert attendance_rate(0, 0, 0) is None and attendance_rate(0, 0, 2) == 1.0 and attendance_rate(0, 3, 0) == 0.0


# --- the admin --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_shows_remark_who_when_and_the_change_log(admin_site_client, room):
    teacher, klass, students = room
    session = commands.start_session(teacher, klass.id)
    commands.mark_attendance(session, students[0].id, "late", teacher.id, None, "<i>bus</i>")
    commands.clear_mark(session, students[1].id, teacher.id)
    commands.finish_session(session)
    commands.correct_record(teacher, klass.id, session.id, students[2].id, "excused", "doctor")
    html = admin_site_client.get(f"/admin/live/attendancesession/{session.id}/change/").content.decode()
    assert "&lt;i&gt;bus&lt;/i&gt;" in html and "<i>bus</i>" not in html  # remarks are escaped
    assert "correction" in html and "cleared" in html and "doctor" in html and teacher.id in html
    assert '<td class="field-late">1</td>' in admin_site_client.get("/admin/live/attendancesession/").content.decode()
    records = admin_site_client.get("/admin/live/attendance/").content.decode()
    assert "doctor" in records and "correction" in records


# --- the migration of existing records --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_migration_gives_existing_records_who_and_when():
    from datetime import UTC, datetime, timedelta

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("live", "0006_durable_sessions_required"), ("classes", "0001_initial")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    OldUser, OldClass = old.get_model("accounts", "User"), old.get_model("classes", "Class")
    OldSession, OldAttendance = old.get_model("live", "AttendanceSession"), old.get_model("live", "Attendance")
    teacher = OldUser.objects.create(email="t-mig@example.com", name="T", role="teacher")
    student = OldUser.objects.create(email="s-mig@example.com", name="S", role="student")
    klass = OldClass.objects.create(class_name="C", teacher_id=teacher.pk)
    t0 = datetime(2025, 3, 11, 10, 0, tzinfo=UTC)
    session = OldSession.objects.create(
        klass_id=klass.pk, teacher_id=teacher.pk, state="persisted", marks={}, started_at=t0, updated_at=t0,
        ended_at=t0 + timedelta(hours=1),
    )
    OldAttendance.objects.create(
        klass_id=klass.pk, student_id=student.pk, status="absent", started_at=t0, session_id=session.pk
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    record = Attendance.objects.get(session_id=session.pk)
    assert (record.status, record.remark, record.at, record.by, record.source) == (
        "absent", None, t0 + timedelta(hours=1), teacher.pk, "teacher"
    )


# --- real races: threads, each with its own database connection -------------------------------------------




def _race(*calls: Any) -> list[Any]:
    """Run the calls at once (a barrier), each on its own thread and connection; their results or errors."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Any) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as error:  # noqa: BLE001 (reported to the test)
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@needs_threads
@pytest.mark.django_db(transaction=True)
def test_mark_all_racing_a_mark_never_overwrites_it():
    teacher = make_user("teacher")
    students = [make_user("student") for _ in range(4)]
    klass = make_class(teacher, students)
    for _ in range(5):
        session = commands.start_session(teacher, klass.id)
        target = students[2].id
        marked_ids, mark_result = _race(
            lambda s=session: commands.mark_all(s, "present", teacher.id),
            lambda s=session, t=target: commands.mark_attendance(s, t, "absent", teacher.id),
        )
        assert not isinstance(marked_ids, Exception) and mark_result is None, (marked_ids, mark_result)
        marks = selectors.active_session(teacher.id).attendance
        assert marks[target] == "absent"  # whichever ran first, the mark stands
        assert {sid for sid, status in marks.items() if status == "present"} == set(marked_ids) - {target}
        assert len(marks) == 4


@needs_threads
@pytest.mark.django_db(transaction=True)
def test_two_corrections_at_once_are_both_logged_and_the_last_wins():
    teacher = make_user("teacher")
    student = make_user("student")
    klass = make_class(teacher, [student])
    session = commands.start_session(teacher, klass.id)
    commands.finish_session(session)
    results = _race(
        lambda: commands.correct_record(teacher, klass.id, session.id, student.id, "late", "one"),
        lambda: commands.correct_record(teacher, klass.id, session.id, student.id, "excused", "two"),
    )
    assert not any(isinstance(r, Exception) for r in results), results
    record = Attendance.objects.get(session_id=session.id, student_id=student.id)
    log = list(
        AttendanceChange.objects.filter(session_id=session.id, source="correction").values_list("status", "remark")
    )
    assert sorted(log) == [("excused", "two"), ("late", "one")]
    assert (record.status, record.remark) in log and record.source == "correction"


@pytest.mark.wire
def test_two_corrections_at_once_over_the_wire(wire_server, api):
    """Two PATCHes sent at once to the real server: both logged, the record is the last one's."""
    from concurrent.futures import ThreadPoolExecutor

    site = WireSite(api, wire_server)
    teacher, student = site.person("teacher"), site.person("student")
    class_id = site.new_class(teacher, [student])
    site.session(teacher, class_id)
    [session] = assert_ok(site.get(f"/class/{class_id}/sessions", teacher))
    path = f"/class/{class_id}/sessions/{session['_id']}/records/{student.id}"
    bodies = [{"status": "late", "remark": "one"}, {"status": "excused", "remark": "two"}]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda body: patch(site, path, teacher, body), bodies))
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    changes = assert_ok(site.get(f"/class/{class_id}/sessions/{session['_id']}/changes", teacher))
    corrections = [(c["status"], c["remark"]) for c in changes if c["source"] == "correction"]
    assert sorted(corrections) == [("excused", "two"), ("late", "one")]
    [record] = assert_ok(site.get(f"/class/{class_id}/sessions/{session['_id']}", teacher))["records"]
    assert (record["status"], record["remark"]) in corrections
