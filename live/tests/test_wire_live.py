"""The live WebSocket over the wire: a real Daphne process, a real WebSocket client (docs/api.md
"WebSocket API"; docs/choices.md).

Every test makes its own teachers, students and classes on the shared wire server, so tests do
not see each other's sessions. Every wait has a timeout; "receives nothing" is checked only after
a later message to someone else has arrived.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support import (
    CLOSE_MESSAGE_TOO_BIG,
    MALFORMED_ID,
    MISSING_ID,
    NO_SESSION,
    NOT_YET_UPDATED,
    STUDENT_NOT_FOUND,
    TEACHER_EVENTS,
    TEACHER_ONLY,
    WS_LIMIT,
    ask,
    big_class,
    create_class,
    done,
    enrol,
    error,
    expect_close,
    frame,
    log_since,
    log_size,
    mark,
    marked,
    my_status,
    new_classroom,
    own_wire_server,
    persisted_status,
    recv,
    silent,
    start,
    summary,
    wire_attendance_rows,
)

pytestmark = pytest.mark.wire


async def recv_all(expected: dict, *sockets) -> None:
    """Each socket's next message is `expected`."""
    got = await asyncio.gather(*(recv(ws) for ws in sockets))
    assert got == [expected] * len(sockets)


# --- connecting -------------------------------------------------------------------------------------


async def test_server_logs_no_error_for_a_whole_session(api, classroom, ws_open, wire_server):
    await asyncio.sleep(1.5)  # let Daphne reap earlier tests' sockets first: their errors are not ours
    offset = log_size(wire_server)
    room = classroom(1)
    start(api, room.teacher, room.class_id)
    teacher, student = await ws_open(room.teacher.token), await ws_open(room.students[0].token)
    assert await ask(teacher, mark(room.students[0].id)) == marked(room.students[0].id, "present")
    assert await recv(student) == marked(room.students[0].id, "present")
    assert await ask(teacher, frame("DONE")) == done(1, 0, 1)
    assert await recv(student) == done(1, 0, 1)
    await student.close()
    await teacher.close()
    # Daphne reports an application's exception when it reaps the finished instance (once a second).
    await asyncio.sleep(2.5)
    log = log_since(wire_server, offset)
    assert "Traceback" not in log and "Exception" not in log, log


# --- the database connection between events ----------------------------------------------------------

IDLE_CHECK_SECONDS = 1.0


@pytest.fixture(scope="module")
def idle_check_server(tmp_path_factory):
    """A server of its own, checking its socket thread's connection after 1 s of idle (DB_IDLE_CHECK_SECONDS,
    30 s by default) and with the account upkeep (a periodic database call) out of the way, so that nothing
    but the test uses the database between its events."""
    env = {"DB_IDLE_CHECK_SECONDS": str(IDLE_CHECK_SECONDS), "LIVE_UPKEEP_SECONDS": "3600"}
    with own_wire_server(tmp_path_factory.mktemp("idle-check"), env) as server:
        yield server


async def test_socket_events_after_an_idle_gap_longer_than_the_connection_check(idle_check_server, wire_sockets):
    """Every socket event that uses the database (handshake, ATTENDANCE_MARKED, DONE), each after a gap longer
    than the check interval, on the run's backend. On MongoDB the check used to raise NotImplementedError
    (is_usable()) before the idle timer was reset: every later handshake got HTTP 500 and every event
    "Internal server error", for good."""
    server = idle_check_server
    offset = log_size(server)
    with httpx.Client(base_url=server.http_url, timeout=10.0) as client:
        room = new_classroom(client, 2)
        start(client, room.teacher, room.class_id)
    teacher, students, class_id = room.teacher, room.students, room.class_id
    gap = IDLE_CHECK_SECONDS * 1.5
    teacher_ws = await wire_sockets(server, teacher)
    await asyncio.sleep(gap)
    student_ws = await wire_sockets(server, students[0])  # the handshake reads the user and their classes
    await asyncio.sleep(gap)
    assert await ask(teacher_ws, mark(students[0].id)) == marked(students[0].id, "present")  # reads enrolment
    assert await recv(student_ws) == marked(students[0].id, "present")
    await asyncio.sleep(gap)
    assert await ask(teacher_ws, frame("DONE")) == done(1, 1, 2)  # writes the records
    assert await recv(student_ws) == done(1, 1, 2)
    await asyncio.sleep(gap)
    late_ws = await wire_sockets(server, students[1])
    assert await ask(late_ws, frame("MY_ATTENDANCE")) == error(NO_SESSION)
    for ws in (teacher_ws, student_ws, late_ws):
        await ws.close()
    assert sorted(status for _, status, _ in wire_attendance_rows(server, class_id)) == ["absent", "present"]
    log = log_since(server, offset)
    assert "Traceback" not in log and "failed its check" not in log, log


# --- frames ----------------------------------------------------------------------------------------


@pytest.fixture
async def live_room(api, classroom, ws_open):
    """A started session of a class of two students, with the teacher's and both students' sockets open."""
    room = classroom(2)
    start(api, room.teacher, room.class_id)
    room.teacher_ws = await ws_open(room.teacher.token)
    room.student_ws = [await ws_open(s.token) for s in room.students]
    return room


async def still_usable(room) -> None:
    """The teacher's socket answers a valid event, and the broadcast reaches the students."""
    assert await ask(room.teacher_ws, frame("TODAY_SUMMARY")) == summary(0, 0)
    await recv_all(summary(0, 0), *room.student_ws)


async def test_unknown_keys_are_ignored(live_room):
    room = live_room
    student = room.students[0]
    extra = {"studentId": student.id, "status": "present", "note": "late bus", "by": {"x": 1}}
    assert await ask(room.teacher_ws, frame("ATTENDANCE_MARKED", extra, id=7, ts="now")) == marked(
        student.id, "present"
    )
    await recv_all(marked(student.id, "present"), *room.student_ws)


async def test_binary_frame_over_64_kib_closes_1009(live_room):
    await live_room.student_ws[0].send(b"x" * (WS_LIMIT + 1))
    await expect_close(live_room.student_ws[0], CLOSE_MESSAGE_TOO_BIG)
    assert await ask(live_room.student_ws[1], frame("MY_ATTENDANCE")) == my_status(NOT_YET_UPDATED)


# --- roles and check order ------------------------------------------------------------------------------


async def test_teacher_events_from_a_student_without_any_session(ws_open, make_person):
    ws = await ws_open(make_person("student").token)
    for event in TEACHER_EVENTS:
        assert await ask(ws, frame(event, "bad")) == error(TEACHER_ONLY)  # role before session


# --- ATTENDANCE_MARKED ---------------------------------------------------------------------------------------


async def test_mark_reaches_every_participant_socket_and_nobody_else(api, classroom, ws_open, make_person):
    room = classroom(3)
    s0, s1, s2 = room.students
    start(api, room.teacher, room.class_id)
    teacher = await ws_open(room.teacher.token)
    teacher_2 = await ws_open(room.teacher.token)
    s0_a, s0_b = await ws_open(s0.token), await ws_open(s0.token)
    s1_ws, s2_ws = await ws_open(s1.token), await ws_open(s2.token)
    # Outsiders: a student of no class, another teacher with a class of their own, a student of that class.
    other = classroom(1)
    outsiders = [
        await ws_open(make_person("student").token),
        await ws_open(other.teacher.token),
        await ws_open(other.students[0].token),
    ]

    assert await ask(teacher, mark(s1.id, "absent")) == marked(s1.id, "absent")  # the sender gets it too
    await recv_all(marked(s1.id, "absent"), teacher_2, s0_a, s0_b, s1_ws, s2_ws)
    await silent(*outsiders, teacher, teacher_2, s0_a, s0_b, s1_ws, s2_ws)

    # The teacher's other socket can mark as well; the first socket gets the broadcast.
    assert await ask(teacher_2, mark(s0.id)) == marked(s0.id, "present")
    await recv_all(marked(s0.id, "present"), teacher, s0_a, s0_b, s1_ws, s2_ws)
    await silent(*outsiders)


async def test_mark_of_someone_not_enrolled_is_student_not_found(live_room, classroom, make_person):
    room = live_room
    other = classroom(1)
    for student_id in (
        make_person("student").id,  # a student, not in this class
        other.students[0].id,  # a student of another class
        room.teacher.id,  # the teacher
        MISSING_ID,
        MALFORMED_ID,
        room.students[0].id.upper(),
    ):
        assert await ask(room.teacher_ws, mark(student_id)) == error(STUDENT_NOT_FOUND)
    await still_usable(room)  # nothing was marked or broadcast


async def test_marking_again_overwrites(live_room):
    room = live_room
    s0 = room.students[0]
    for status in ("present", "absent", "absent", "present", "absent"):
        assert await ask(room.teacher_ws, mark(s0.id, status)) == marked(s0.id, status)
        await recv_all(marked(s0.id, status), *room.student_ws)
    assert await ask(room.student_ws[0], frame("MY_ATTENDANCE")) == my_status("absent")
    assert await ask(room.teacher_ws, frame("TODAY_SUMMARY")) == summary(0, 1)


async def test_student_id_is_trimmed(live_room):
    room = live_room
    s0 = room.students[0]
    assert await ask(room.teacher_ws, mark(f"  {s0.id} ")) == marked(s0.id, "present")
    await recv_all(marked(s0.id, "present"), *room.student_ws)
    assert await ask(room.student_ws[0], frame("MY_ATTENDANCE")) == my_status("present")


# --- TODAY_SUMMARY -------------------------------------------------------------------------------------------


async def test_today_summary_counts_marks_so_far_and_is_broadcast(api, classroom, ws_open, make_person):
    room = classroom(4)
    start(api, room.teacher, room.class_id)
    teacher = await ws_open(room.teacher.token)
    students = [await ws_open(s.token) for s in room.students]
    outsider = await ws_open(make_person("student").token)

    assert await ask(teacher, frame("TODAY_SUMMARY")) == summary(0, 0)
    await recv_all(summary(0, 0), *students)
    for student, status in zip(room.students[:3], ("present", "absent", "present"), strict=True):
        assert await ask(teacher, mark(student.id, status)) == marked(student.id, status)
        await recv_all(marked(student.id, status), *students)
    assert await ask(teacher, frame("TODAY_SUMMARY")) == summary(2, 1)  # the unmarked fourth is not counted
    await recv_all(summary(2, 1), *students)
    await silent(outsider)


# --- MY_ATTENDANCE ---------------------------------------------------------------------------------------------


async def test_my_attendance_answers_only_the_asking_socket(live_room, ws_open):
    room = live_room
    s0 = room.students[0]
    other_socket = await ws_open(s0.token)
    assert await ask(room.student_ws[0], frame("MY_ATTENDANCE")) == my_status(NOT_YET_UPDATED)
    assert await ask(room.teacher_ws, mark(s0.id, "absent")) == marked(s0.id, "absent")
    # The other socket's next message is the broadcast, not a copy of the answer above.
    await recv_all(marked(s0.id, "absent"), other_socket, *room.student_ws)
    assert await ask(room.student_ws[0], frame("MY_ATTENDANCE")) == my_status("absent")
    assert await ask(room.student_ws[1], frame("MY_ATTENDANCE")) == my_status(NOT_YET_UPDATED)
    assert await ask(room.teacher_ws, frame("TODAY_SUMMARY")) == summary(0, 1)
    await recv_all(summary(0, 1), other_socket, *room.student_ws)
    await silent(other_socket, room.teacher_ws, *room.student_ws)


async def test_my_attendance_without_a_live_session(api, classroom, ws_open, make_person):
    room = classroom(1)
    lonely = await ws_open(make_person("student").token)  # in no class at all
    enrolled = await ws_open(room.students[0].token)  # in a class without a session
    assert await ask(lonely, frame("MY_ATTENDANCE")) == error(NO_SESSION)
    assert await ask(enrolled, frame("MY_ATTENDANCE")) == error(NO_SESSION)
    # Someone else's live session does not count.
    other = classroom(1)
    start(api, other.teacher, other.class_id)
    assert await ask(lonely, frame("MY_ATTENDANCE")) == error(NO_SESSION)
    assert await ask(enrolled, frame("MY_ATTENDANCE")) == error(NO_SESSION)
    assert await ask(enrolled, frame("MY_ATTENDANCE", {"classId": other.class_id})) == error(NO_SESSION)


async def test_my_attendance_with_two_live_classes(api, classroom, make_person, ws_open):
    student = make_person("student")
    first, second, idle = classroom(0), classroom(0), classroom(0)
    for room in (first, second, idle):
        enrol(api, room.teacher, room.class_id, student)
    start(api, first.teacher, first.class_id)
    start(api, second.teacher, second.class_id)  # started last: the default
    ws = await ws_open(student.token)
    t1, t2 = await ws_open(first.teacher.token), await ws_open(second.teacher.token)

    assert await ask(t1, mark(student.id, "present")) == marked(student.id, "present")
    assert await recv(ws) == marked(student.id, "present")
    assert await ask(ws, frame("MY_ATTENDANCE")) == my_status(NOT_YET_UPDATED)
    assert await ask(ws, frame("MY_ATTENDANCE", {"classId": first.class_id})) == my_status("present")
    assert await ask(ws, frame("MY_ATTENDANCE", {"classId": second.class_id})) == my_status(NOT_YET_UPDATED)
    for class_id in (idle.class_id, classroom(0).class_id, MISSING_ID, MALFORMED_ID):
        assert await ask(ws, frame("MY_ATTENDANCE", {"classId": class_id})) == error(NO_SESSION)

    assert await ask(t2, mark(student.id, "absent")) == marked(student.id, "absent")
    assert await recv(ws) == marked(student.id, "absent")
    assert await ask(ws, frame("MY_ATTENDANCE")) == my_status("absent")

    # Restarting the first makes it the most recent, with empty marks.
    start(api, first.teacher, first.class_id)
    assert await ask(ws, frame("MY_ATTENDANCE")) == my_status(NOT_YET_UPDATED)
    assert await ask(ws, frame("MY_ATTENDANCE", {"classId": second.class_id})) == my_status("absent")

    # Once the most recent ends, the other one answers.
    assert await ask(t1, frame("DONE")) == done(0, 1, 1)
    assert await recv(ws) == done(0, 1, 1)
    assert await ask(ws, frame("MY_ATTENDANCE")) == my_status("absent")
    assert await ask(ws, frame("MY_ATTENDANCE", {"classId": first.class_id})) == error(NO_SESSION)


# --- membership changes while connected ----------------------------------------------------------------------


# --- sessions ----------------------------------------------------------------------------------------------


async def test_two_teachers_sessions_are_independent(api, classroom, make_person, ws_open):
    a, b = classroom(2), classroom(2)
    shared = make_person("student")  # enrolled in both classes
    enrol(api, a.teacher, a.class_id, shared)
    enrol(api, b.teacher, b.class_id, shared)
    start(api, a.teacher, a.class_id)
    start(api, b.teacher, b.class_id)
    ta, tb = await ws_open(a.teacher.token), await ws_open(b.teacher.token)
    sa = [await ws_open(s.token) for s in a.students]
    sb = [await ws_open(s.token) for s in b.students]
    shared_ws = await ws_open(shared.token)

    assert await ask(ta, mark(a.students[0].id)) == marked(a.students[0].id, "present")
    await recv_all(marked(a.students[0].id, "present"), *sa, shared_ws)
    assert await ask(tb, mark(b.students[0].id, "absent")) == marked(b.students[0].id, "absent")
    await recv_all(marked(b.students[0].id, "absent"), *sb, shared_ws)
    await silent(ta, *sa)  # B's broadcast did not reach A's class
    # Each teacher may mark only their own class's students.
    assert await ask(ta, mark(b.students[1].id)) == error(STUDENT_NOT_FOUND)
    assert await ask(ta, mark(shared.id, "absent")) == marked(shared.id, "absent")
    await recv_all(marked(shared.id, "absent"), *sa, shared_ws)

    assert await ask(ta, frame("DONE")) == done(1, 2, 3)
    await recv_all(done(1, 2, 3), *sa, shared_ws)
    await silent(tb, *sb)
    assert await ask(ta, frame("TODAY_SUMMARY")) == error(NO_SESSION)
    # B's session is untouched: its marks are intact and it can still be marked and ended.
    assert await ask(tb, frame("TODAY_SUMMARY")) == summary(0, 1)
    await recv_all(summary(0, 1), *sb, shared_ws)
    assert await ask(shared_ws, frame("MY_ATTENDANCE")) == my_status(NOT_YET_UPDATED)
    assert await ask(tb, frame("DONE")) == done(0, 3, 3)
    await recv_all(done(0, 3, 3), *sb, shared_ws)
    await silent(ta, *sa)
    assert persisted_status(api, shared, a.class_id) == "absent"
    assert persisted_status(api, a.students[0], a.class_id) == "present"
    assert persisted_status(api, shared, b.class_id) == "absent"


async def test_starting_again_replaces_the_session_with_empty_marks(api, live_room):
    room = live_room
    s0 = room.students[0]
    assert await ask(room.teacher_ws, mark(s0.id)) == marked(s0.id, "present")
    await recv_all(marked(s0.id, "present"), *room.student_ws)
    start(api, room.teacher, room.class_id)
    assert await ask(room.student_ws[0], frame("MY_ATTENDANCE")) == my_status(NOT_YET_UPDATED)
    assert await ask(room.teacher_ws, frame("TODAY_SUMMARY")) == summary(0, 0)
    await recv_all(summary(0, 0), *room.student_ws)
    assert await ask(room.teacher_ws, frame("DONE")) == done(0, 2, 2)  # the earlier mark is gone
    await recv_all(done(0, 2, 2), *room.student_ws)


async def test_starting_another_class_replaces_the_teachers_session(api, live_room, make_person, ws_open):
    room = live_room
    s0 = room.students[0]
    newcomer = make_person("student")
    other_class = create_class(api, room.teacher)
    enrol(api, room.teacher, other_class, newcomer)
    newcomer_ws = await ws_open(newcomer.token)
    assert await ask(room.teacher_ws, mark(s0.id)) == marked(s0.id, "present")
    await recv_all(marked(s0.id, "present"), *room.student_ws)

    start(api, room.teacher, other_class)
    assert await ask(room.student_ws[0], frame("MY_ATTENDANCE")) == error(NO_SESSION)
    assert await ask(room.teacher_ws, mark(s0.id)) == error(STUDENT_NOT_FOUND)
    assert await ask(room.teacher_ws, mark(newcomer.id)) == marked(newcomer.id, "present")
    assert await recv(newcomer_ws) == marked(newcomer.id, "present")
    await silent(*room.student_ws)
    assert await ask(room.teacher_ws, frame("DONE")) == done(1, 0, 1)
    assert await recv(newcomer_ws) == done(1, 0, 1)
    await silent(*room.student_ws)
    assert persisted_status(api, s0, room.class_id) is None


async def test_a_session_does_not_depend_on_sockets(api, classroom, ws_open):
    room = classroom(2)
    s0 = room.students[0]
    start(api, room.teacher, room.class_id)  # no socket open yet
    teacher = await ws_open(room.teacher.token)
    assert await ask(teacher, mark(s0.id)) == marked(s0.id, "present")
    await teacher.close()
    again = await ws_open(room.teacher.token)
    assert await ask(again, frame("TODAY_SUMMARY")) == summary(1, 0)
    assert await ask(again, frame("DONE")) == done(1, 1, 2)


# --- DONE -------------------------------------------------------------------------------------------------


async def test_done_persists_every_enrolled_student_and_ends_the_session(
    api, classroom, make_person, ws_open, wire_server
):
    room = classroom(4)
    present, absent, unmarked, unconnected = room.students
    outsider = await ws_open(make_person("student").token)
    for student in room.students:
        assert persisted_status(api, student, room.class_id) is None  # nothing persisted yet
    start(api, room.teacher, room.class_id)
    teacher = await ws_open(room.teacher.token)
    sockets = [await ws_open(s.token) for s in (present, absent, unmarked)]
    assert await ask(teacher, mark(present.id)) == marked(present.id, "present")
    await recv_all(marked(present.id, "present"), *sockets)
    assert await ask(teacher, mark(absent.id, "absent")) == marked(absent.id, "absent")
    await recv_all(marked(absent.id, "absent"), *sockets)
    # Enrolled after the marks, before DONE: DONE reads enrolment when it runs.
    late = make_person("student")
    enrol(api, room.teacher, room.class_id, late)
    for student in room.students:
        assert persisted_status(api, student, room.class_id) is None  # a live session is not persisted

    assert await ask(teacher, frame("DONE")) == done(1, 4, 5)
    await recv_all(done(1, 4, 5), *sockets)
    await silent(outsider, teacher, *sockets)

    expected = {present: "present", absent: "absent", unmarked: "absent", unconnected: "absent", late: "absent"}
    for student, status in expected.items():
        assert persisted_status(api, student, room.class_id) == status
    rows = wire_attendance_rows(wire_server, room.class_id)
    assert sorted((sid, status) for sid, status, _ in rows) == sorted((s.id, st) for s, st in expected.items())

    # The session is over for everyone.
    for event in TEACHER_EVENTS:
        assert await ask(teacher, frame(event)) == error(NO_SESSION)
    assert await ask(teacher, mark(present.id)) == error(NO_SESSION)
    assert await ask(sockets[0], frame("MY_ATTENDANCE")) == error(NO_SESSION)
    assert await ask(sockets[0], frame("MY_ATTENDANCE", {"classId": room.class_id})) == error(NO_SESSION)


BIG_CLASS = 1000


async def test_done_for_a_class_of_1000_students(api, make_person, ws_open, wire_server):
    """DONE persists one record per enrolled student in one bulk write (a transaction, or on a standalone MongoDB
    the commit marker), for a class of the size the benchmark measures."""
    teacher = make_person("teacher")
    class_id, student_ids = big_class(wire_server, teacher, BIG_CLASS - 1)
    watcher = make_person("student")  # one student with a socket, unmarked: absent
    enrol(api, teacher, class_id, watcher)
    start(api, teacher, class_id)
    teacher_ws = await ws_open(teacher.token)
    watcher_ws = await ws_open(watcher.token)
    present = student_ids[:10]
    for student_id in present:
        assert await ask(teacher_ws, mark(student_id)) == marked(student_id, "present")
        assert await recv(watcher_ws) == marked(student_id, "present")

    assert await ask(teacher_ws, frame("DONE"), timeout=60) == done(10, BIG_CLASS - 10, BIG_CLASS)
    assert await recv(watcher_ws) == done(10, BIG_CLASS - 10, BIG_CLASS)
    rows = wire_attendance_rows(wire_server, class_id)
    assert len(rows) == BIG_CLASS and len({started_at for _, _, started_at in rows}) == 1
    statuses = {student_id: status for student_id, status, _ in rows}
    assert statuses == {**dict.fromkeys([*student_ids, watcher.id], "absent"), **dict.fromkeys(present, "present")}
    assert persisted_status(api, watcher, class_id) == "absent"
    assert await ask(teacher_ws, frame("DONE")) == error(NO_SESSION)


async def test_two_sessions_in_a_row_my_attendance_is_the_latest(api, live_room):
    room = live_room
    s0, s1 = room.students
    assert await ask(room.teacher_ws, mark(s0.id)) == marked(s0.id, "present")
    await recv_all(marked(s0.id, "present"), *room.student_ws)
    assert await ask(room.teacher_ws, frame("DONE")) == done(1, 1, 2)
    await recv_all(done(1, 1, 2), *room.student_ws)
    assert (persisted_status(api, s0, room.class_id), persisted_status(api, s1, room.class_id)) == ("present", "absent")

    start(api, room.teacher, room.class_id)
    assert await ask(room.teacher_ws, mark(s1.id)) == marked(s1.id, "present")
    await recv_all(marked(s1.id, "present"), *room.student_ws)
    # Until the second session is persisted, the first one's statuses stand.
    assert persisted_status(api, s1, room.class_id) == "absent"
    assert await ask(room.teacher_ws, frame("DONE")) == done(1, 1, 2)
    await recv_all(done(1, 1, 2), *room.student_ws)
    assert (persisted_status(api, s0, room.class_id), persisted_status(api, s1, room.class_id)) == ("absent", "present")


