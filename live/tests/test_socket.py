"""The live WebSocket's contract, written once and run in-process (Channels' communicator, in-memory layer and
store) and over the wire (a real Daphne, a real WebSocket client): the `live_site` fixture (docs/api.md
"WebSocket API"; docs/choices.md).

Every test makes its own teachers, students and classes, so tests do not see each other's sessions on the
shared wire server. Every wait has a timeout; "receives nothing" is checked only after a later message to
someone else has arrived. What holds on one side only is in test_consumer.py (in-process) or
test_wire_live.py (over the wire).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support import (
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_POLICY_VIOLATION,
    INVALID_FORMAT,
    MALFORMED_ID,
    MISSING_ID,
    NO_SESSION,
    NOT_YET_UPDATED,
    STUDENT_ONLY,
    TEACHER_EVENTS,
    TEACHER_ONLY,
    UNKNOWN_EVENT,
    WS_LIMIT,
    WS_UNAUTHORIZED,
    done,
    error,
    forge_token,
    frame,
    mark,
    marked,
    my_status,
    recv_all,
    silent_all,
    summary,
)


@pytest.fixture
async def live_room(live_site) -> Any:
    """A started session of a class of two students, with the teacher's and both students' sockets open."""
    room = await live_site.classroom(2)
    await live_site.start(room.teacher, room.class_id)
    room.teacher_ws = await live_site.open(room.teacher)
    room.student_ws = [await live_site.open(s) for s in room.students]
    return room


async def still_usable(room) -> None:
    """The teacher's socket answers a valid event, and the broadcast reaches the students."""
    assert await room.teacher_ws.ask(frame("TODAY_SUMMARY")) == summary(0, 0)
    await recv_all(summary(0, 0), *room.student_ws)


# --- connecting ----------------------------------------------------------------------------------


@pytest.fixture
def bad_token(live_site):
    async def make(case: str) -> str | None:
        secret = live_site.jwt_secret
        if case == "missing":
            return None
        if case == "empty":
            return ""
        if case == "garbage":
            return "not-a-jwt"
        if case == "garbage with dots":
            return "not.a.jwt"
        if case == "deleted user":  # a well-signed token for an id that names nobody
            return forge_token(secret, user_id=MISSING_ID, role="student")
        if case == "userId not a string":
            return forge_token(secret, user_id=12, role="student")
        student = await live_site.person("student")
        if case == "wrong secret":
            return forge_token("some-other-secret-" + "x" * 32, user_id=student.id, role="student")
        if case == "expired":
            return forge_token(secret, user_id=student.id, role="student", ttl=-30)
        if case == "tampered":
            head, payload, signature = live_site.token(student).split(".")
            return f"{head}.{payload}.{signature[::-1]}"
        raise AssertionError(case)

    return make


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "garbage",
        "garbage with dots",
        "deleted user",
        "userId not a string",
        "wrong secret",
        "expired",
        "tampered",
    ],
)
async def test_bad_token_gets_error_then_close_1008(live_site, bad_token, case):
    ws = await live_site.open(await bad_token(case))
    assert await ws.recv() == error(WS_UNAUTHORIZED)
    await ws.expect_close(CLOSE_POLICY_VIOLATION)
    if live_site.mode == "local":  # a communicator can still send after the close: nothing is served to it
        await ws.send(frame("MY_ATTENDANCE"))
        await ws.silent()


async def test_the_systems_own_tokens_are_accepted(live_site):
    """Guards the test above: a token signed like `bad_token`'s, for a real user, is accepted."""
    student = await live_site.person("student")
    ws = await live_site.open(forge_token(live_site.jwt_secret, user_id=student.id, role="student"))
    assert await ws.ask(frame("MY_ATTENDANCE")) == error(NO_SESSION)


async def test_good_connect_sends_nothing_unprompted(live_site):
    room = await live_site.classroom(1)
    teacher = await live_site.open(room.teacher)
    student = await live_site.open(room.students[0])
    # Anything sent on connect would come before the answers.
    assert await teacher.ask(frame("NOPE")) == error(UNKNOWN_EVENT)
    assert await student.ask(frame("NOPE")) == error(UNKNOWN_EVENT)
    assert await teacher.ask(frame("TODAY_SUMMARY")) == error(NO_SESSION)
    await silent_all(teacher, student)


# --- frames ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "",
        "{'event': 'TODAY_SUMMARY'}",
        '{"event": "TODAY_SUMMARY"',
        "[]",
        '["TODAY_SUMMARY"]',
        '[{"event": "TODAY_SUMMARY"}]',
        '"TODAY_SUMMARY"',
        "42",
        "null",
        "{}",
        '{"data": {}}',
        '{"event": null}',
        '{"event": null, "data": {}}',
        '{"event": 7}',
        '{"event": ["TODAY_SUMMARY"]}',
        '{"event": {"name": "TODAY_SUMMARY"}}',
        "[" * 5000 + "]" * 5000,
    ],
)
async def test_invalid_frames_are_invalid_format_and_the_socket_stays_usable(live_room, text):
    assert await live_room.teacher_ws.ask(text) == error(INVALID_FORMAT)
    await still_usable(live_room)


async def test_binary_frame_is_invalid_format(live_room):
    assert await live_room.teacher_ws.ask(frame("TODAY_SUMMARY").encode()) == error(INVALID_FORMAT)
    await still_usable(live_room)


@pytest.mark.parametrize("event", ["HELLO", "today_summary", "", " TODAY_SUMMARY", "TODAY_SUMMARY ", "ERROR"])
async def test_unknown_event(live_site, event):
    room = await live_site.classroom(2)
    teacher = await live_site.open(room.teacher)
    assert await teacher.ask(frame(event, {})) == error(UNKNOWN_EVENT)  # before the session check
    assert await teacher.ask(frame("TODAY_SUMMARY")) == error(NO_SESSION)
    await live_site.start(room.teacher, room.class_id)
    room.teacher_ws = teacher
    room.student_ws = [await live_site.open(s) for s in room.students]
    assert await teacher.ask(frame(event, {})) == error(UNKNOWN_EVENT)
    assert await room.student_ws[0].ask(frame(event)) == error(UNKNOWN_EVENT)
    await still_usable(room)


async def test_frame_over_64_kib_closes_1009_and_spares_other_sockets(live_room, live_site):
    room = live_room
    other = await live_site.open(room.teacher)
    head = frame("TODAY_SUMMARY", {"pad": ""})
    exactly = head.replace('"pad": ""', '"pad": "' + "x" * (WS_LIMIT - len(head)) + '"')
    assert len(exactly.encode()) == WS_LIMIT
    assert await room.teacher_ws.ask(exactly) == summary(0, 0)
    await recv_all(summary(0, 0), other, *room.student_ws)

    # One multi-byte character more than the limit, counted in bytes.
    over = exactly.replace("x", "é", 1)
    assert len(over.encode()) == WS_LIMIT + 1
    await room.teacher_ws.send(over)
    await room.teacher_ws.expect_close(CLOSE_MESSAGE_TOO_BIG)

    # The same teacher's other socket, and the session, are unharmed.
    assert await other.ask(mark(room.students[0].id)) == marked(room.students[0].id, "present")
    await recv_all(marked(room.students[0].id, "present"), *room.student_ws)
    assert await room.student_ws[0].ask(frame("MY_ATTENDANCE")) == my_status("present")


# --- roles and check order --------------------------------------------------------------------------


@pytest.mark.parametrize("event", TEACHER_EVENTS)
async def test_teacher_events_from_a_student_are_forbidden(live_room, event):
    room = live_room
    ws = room.student_ws[0]
    good = {"studentId": room.students[0].id, "status": "present"}
    for data in (good, ..., None, "bad data", {"studentId": 5}):
        assert await ws.ask(frame(event, data)) == error(TEACHER_ONLY)  # role before payload
    assert await ws.ask(frame("MY_ATTENDANCE")) == my_status(NOT_YET_UPDATED)
    await still_usable(room)  # nothing marked, session not ended


async def test_my_attendance_from_a_teacher_is_forbidden(live_room, live_site):
    for data in (..., {"classId": live_room.class_id}, "bad", [1, 2]):
        assert await live_room.teacher_ws.ask(frame("MY_ATTENDANCE", data)) == error(STUDENT_ONLY)
    lone = await live_site.open(await live_site.person("teacher"))
    assert await lone.ask(frame("MY_ATTENDANCE", "bad")) == error(STUDENT_ONLY)


async def test_session_is_checked_before_payload(live_site):
    room = await live_site.classroom(1)
    teacher = await live_site.open(room.teacher)
    student = await live_site.open(room.students[0])
    bad_mark = frame("ATTENDANCE_MARKED", {"studentId": MALFORMED_ID, "status": "?"})
    for event in TEACHER_EVENTS:
        assert await teacher.ask(frame(event, "bad")) == error(NO_SESSION)
    assert await teacher.ask(bad_mark) == error(NO_SESSION)
    assert await student.ask(frame("MY_ATTENDANCE", "bad")) == error(NO_SESSION)

    await live_site.start(room.teacher, room.class_id)
    for event in TEACHER_EVENTS:
        assert await teacher.ask(frame(event, "bad")) == error(INVALID_FORMAT)
    assert await student.ask(frame("MY_ATTENDANCE", "bad")) == error(INVALID_FORMAT)
    assert await teacher.ask(bad_mark) == error(INVALID_FORMAT)  # payload before the student check


@pytest.mark.parametrize(
    "data",
    [
        ...,
        None,
        {},
        [],
        "present",
        ["ID", "present"],
        {"studentId": "ID"},
        {"status": "present"},
        {"studentId": "", "status": "present"},
        {"studentId": "   ", "status": "present"},
        {"studentId": 5, "status": "present"},
        {"studentId": None, "status": "present"},
        {"studentId": ["ID"], "status": "present"},
        {"studentId": "ID", "status": "tardy"},
        {"studentId": "ID", "status": "LATE"},
        {"studentId": "ID", "status": "present", "remark": "x" * 501},
        {"studentId": "ID", "status": "present", "remark": " " + "x" * 501},
        {"studentId": "ID", "status": "present", "remark": 5},
        {"studentId": "ID", "status": "present", "remark": ["a"]},
        {"studentId": "ID", "status": "PRESENT"},
        {"studentId": "ID", "status": "Present"},
        {"studentId": "ID", "status": ""},
        {"studentId": "ID", "status": None},
        {"studentId": "ID", "status": True},
        {"studentId": "ID", "status": 1},
    ],
)
async def test_attendance_marked_bad_data(live_room, data):
    if isinstance(data, dict) and data.get("studentId") == "ID":
        data = {**data, "studentId": live_room.students[0].id}
    assert await live_room.teacher_ws.ask(frame("ATTENDANCE_MARKED", data)) == error(INVALID_FORMAT)
    await still_usable(live_room)  # nothing was marked


@pytest.mark.parametrize("event", ["TODAY_SUMMARY", "DONE"])
@pytest.mark.parametrize("data", [[], "x", 0, True, [{}]])
async def test_payloadless_teacher_events_reject_non_objects(live_room, event, data):
    assert await live_room.teacher_ws.ask(frame(event, data)) == error(INVALID_FORMAT)
    await still_usable(live_room)  # and DONE did not end the session


@pytest.mark.parametrize("data", [..., None, {}, {"unknown": [1, 2]}])
async def test_payloadless_events_accept_missing_null_or_any_object(live_room, data):
    room = live_room
    assert await room.student_ws[0].ask(frame("MY_ATTENDANCE", data)) == my_status(NOT_YET_UPDATED)
    assert await room.teacher_ws.ask(frame("TODAY_SUMMARY", data)) == summary(0, 0)
    await recv_all(summary(0, 0), *room.student_ws)
    assert await room.teacher_ws.ask(frame("DONE", data)) == done(0, 2, 2)
    await recv_all(done(0, 2, 2), *room.student_ws)


@pytest.mark.parametrize(
    "data",
    [[], "x", 1, {"classId": ""}, {"classId": "  "}, {"classId": 5}, {"classId": ["x"]}, {"classId": []}],
)
async def test_my_attendance_bad_data(live_room, data):
    ws = live_room.student_ws[0]
    assert await ws.ask(frame("MY_ATTENDANCE", data)) == error(INVALID_FORMAT)
    assert await ws.ask(frame("MY_ATTENDANCE")) == my_status(NOT_YET_UPDATED)
    assert await ws.ask(frame("MY_ATTENDANCE", {"classId": live_room.class_id})) == my_status(NOT_YET_UPDATED)


# --- membership changes while connected ----------------------------------------------------------------------


async def test_student_enrolled_after_connecting_receives_later_broadcasts(live_site):
    room = await live_site.classroom(1)
    late = await live_site.person("student")
    await live_site.start(room.teacher, room.class_id)
    teacher = await live_site.open(room.teacher)
    late_ws = await live_site.open(late)
    assert await late_ws.ask(frame("MY_ATTENDANCE")) == error(NO_SESSION)

    await live_site.enrol(room.teacher, room.class_id, late)
    assert await teacher.ask(mark(late.id, "absent")) == marked(late.id, "absent")
    assert await late_ws.recv() == marked(late.id, "absent")
    assert await late_ws.ask(frame("MY_ATTENDANCE")) == my_status("absent")
    assert await teacher.ask(frame("DONE")) == done(0, 2, 2)
    assert await late_ws.recv() == done(0, 2, 2)


async def test_teacher_socket_opened_before_the_class_existed(live_site):
    teacher, student = await live_site.person("teacher"), await live_site.person("student")
    early = await live_site.open(teacher)
    class_id = await live_site.new_class(teacher, [student])
    await live_site.start(teacher, class_id)
    assert await early.ask(mark(student.id)) == marked(student.id, "present")
    later = await live_site.open(teacher)
    assert await later.ask(frame("TODAY_SUMMARY")) == summary(1, 0)
    assert await early.recv() == summary(1, 0)


# --- DONE -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_sockets", [2, 5])
async def test_concurrent_dones_persist_once(live_room, live_site, n_sockets):
    room = live_room
    teachers = [room.teacher_ws, *[await live_site.open(room.teacher) for _ in range(n_sockets - 1)]]
    assert await room.teacher_ws.ask(mark(room.students[0].id)) == marked(room.students[0].id, "present")
    await recv_all(marked(room.students[0].id, "present"), *teachers[1:], *room.student_ws)

    await asyncio.gather(*(ws.send(frame("DONE")) for ws in teachers))
    # Every socket gets the one broadcast once; each loser's socket also gets the error (before or after it).
    received = await asyncio.gather(*(ws.drain() for ws in teachers))
    for messages in received:
        assert messages.count(done(1, 1, 2)) == 1, messages
        assert all(m in (done(1, 1, 2), error(NO_SESSION)) for m in messages), messages
    assert sum(messages.count(error(NO_SESSION)) for messages in received) == n_sockets - 1, received
    await recv_all(done(1, 1, 2), *room.student_ws)
    await silent_all(*room.student_ws)  # exactly one broadcast

    rows = await live_site.attendance_rows(room.class_id)
    assert sorted((sid, status) for sid, status, _ in rows) == sorted(
        [(room.students[0].id, "present"), (room.students[1].id, "absent")]
    )
    assert len({started_at for _, _, started_at in rows}) == 1
