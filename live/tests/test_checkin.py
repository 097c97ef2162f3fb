"""Self check-in (docs/api.md "Self check-in"): CHECKIN_OPEN, CHECKIN_CODE, CHECKIN_CLOSE, CHECK_IN and
POST /attendance/check-in. Socket scenarios run in-process and over the wire (`live_site`), HTTP ones both ways
(`site`); the codes' arithmetic and the rules in time are checked on the commands with a clock of the test's.
What needs real processes (rotation in real time, a restart, two workers): test_wire_checkin.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from common.errors import DomainError, Forbidden, Invalid, NotFound, NotNow, TooManyRequests
from common.schemas import iso_z
from live import checkin, commands, selectors
from live.checkin import Window, code_of
from live.consumers import AttendanceConsumer
from live.hub import publish
from live.models import Attendance, AttendanceChange, AttendanceSession
from live.notify import user_group
from tests.support import (
    ALREADY_MARKED,
    CHECKIN_NOT_OPEN,
    INVALID_CODE,
    INVALID_FORMAT,
    INVALID_SCHEMA,
    ISO_MS_Z,
    MALFORMED_ID,
    MISSING_ID,
    NO_SESSION,
    NOT_ENROLLED,
    STUDENT_ONLY,
    STUDENT_REQUIRED,
    TEACHER_ONLY,
    TOO_MANY_ATTEMPTS,
    TOO_MANY_MESSAGES,
    UNAUTHORIZED,
    LocalSocket,
    assert_error,
    assert_ok,
    done,
    error,
    frame,
    make_class,
    make_user,
    marked,
    recv_all,
    silent_all,
    token_for,
)

CODE = re.compile(r"^[0-9]{6}$")
CLOSED = {"event": "CHECKIN_CLOSED", "data": {}}


def other_code(*codes: str) -> str:
    """A well-formed code that is none of these."""
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in codes)


# --- the codes ---------------------------------------------------------------------------------------------


def test_codes_are_rfc_6238_sha256_truncated_to_six_digits():
    """RFC 6238's SHA-256 test vectors (8 digits, 30 s steps, T = time // 30): ours are their last 6 digits."""
    secret = b"12345678901234567890123456789012".hex()
    vectors = {59: "46119246", 1111111109: "68084774", 1234567890: "91819424", 2000000000: "90698825"}
    for seconds, totp in vectors.items():
        assert code_of(secret, seconds // 30) == totp[-6:]


def test_each_window_has_codes_of_its_own_that_change_every_rotation():
    a, b = checkin.new_secret(), checkin.new_secret()
    assert a != b and len(bytes.fromhex(a)) == 32
    codes = [code_of(a, n) for n in range(20)]
    assert all(CODE.match(code) for code in codes) and len(set(codes)) >= 18
    assert [code_of(b, n) for n in range(20)] != codes


T0 = datetime(2025, 3, 11, 10, 0, tzinfo=UTC)


def window(rotate: int = 30, minutes: int = 10, late_after: int | None = None) -> Window:
    return Window("s", "c", "t", checkin.new_secret(), T0, T0 + timedelta(minutes=minutes), rotate, late_after)


def test_a_code_is_valid_during_its_rotation_and_the_next_one_only():
    w = window(rotate=10)
    at = T0 + timedelta(seconds=25)  # rotation 2
    assert w.rotation(at) == 2 and w.expires_at(2) == T0 + timedelta(seconds=30)
    assert w.accepts(w.code(2), at) and w.accepts(w.code(1), at)
    assert not w.accepts(w.code(0), at)  # two rotations old
    assert not w.accepts(w.code(3), at)  # a future code is never accepted early
    assert w.accepts(w.code(0), T0) and not w.accepts(w.code(1), T0)
    assert w.accepts(w.code(2), T0 + timedelta(seconds=39.999)) and not w.accepts(w.code(2), T0 + timedelta(seconds=40))


def test_the_last_code_expires_with_the_window_and_lateness_counts_from_the_opening():
    w = window(rotate=300, minutes=7, late_after=5)
    assert w.expires_at(1) == T0 + timedelta(minutes=7)  # not 10 minutes: the window ends first
    assert w.is_open(T0 + timedelta(minutes=7) - timedelta(milliseconds=1)) and not w.is_open(T0 + timedelta(minutes=7))
    assert w.status_at(T0 + timedelta(minutes=4, seconds=59)) == "present"
    assert w.status_at(T0 + timedelta(minutes=5)) == "late"
    assert window(late_after=0).status_at(T0) == "late" and window().status_at(T0 + timedelta(minutes=9)) == "present"


def test_the_url_checks_in_to_the_class_with_the_code():
    assert checkin.checkin_url("https://school.example/", MISSING_ID, "012345") == (
        f"https://school.example/#/check-in/{MISSING_ID}/012345"
    )


# --- the rules in time, on the commands (a clock of the test's) ------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = commands.utc_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(commands, "utc_now", clock)
    return clock


@pytest.fixture
def room(db):
    teacher = make_user("teacher")
    students = [make_user("student") for _ in range(3)]
    klass = make_class(teacher, students)
    return teacher, klass, students


def open_room(room, minutes: int = 10, rotate: int = 30, late_after: int | None = None) -> Window:
    teacher, klass, _ = room
    session = commands.start_session(teacher, klass.id)
    return commands.open_checkin(session, minutes, rotate, late_after)


def check_in(student, class_id: str, code: str) -> str:
    return commands.check_in_to_class(student, class_id, code)


def refused(kind: type[DomainError], message: str, call, *args) -> DomainError:
    with pytest.raises(DomainError) as info:
        call(*args)
    assert (type(info.value), info.value.message) == (kind, message)
    return info.value


def test_present_then_late_after_late_after_minutes(room, clock):
    teacher, klass, (ann, bob, _) = room
    w = open_room(room, minutes=30, rotate=60, late_after=5)
    clock.advance(minutes=4, seconds=59)
    assert check_in(ann, klass.id, w.code(w.rotation(clock.now))) == "present"
    clock.advance(seconds=1)
    assert check_in(bob, klass.id, w.code(w.rotation(clock.now))) == "late"
    marks = AttendanceSession.objects.get(pk=w.session_id).marks
    assert {sid: (m["status"], m["by"], m["source"]) for sid, m in marks.items()} == {
        ann.id: ("present", ann.id, "check-in"),
        bob.id: ("late", bob.id, "check-in"),
    }


def test_the_previous_code_still_works_the_one_before_it_not(room, clock):
    _, klass, (ann, bob, cleo) = room
    w = open_room(room, rotate=10)
    first = w.code(0)
    clock.advance(seconds=10)  # rotation 1
    assert check_in(ann, klass.id, first) == "present"
    clock.advance(seconds=10)  # rotation 2: `first` is two rotations old
    refused(Invalid, INVALID_CODE, check_in, bob, klass.id, first)
    refused(Invalid, INVALID_CODE, check_in, bob, klass.id, w.code(3))  # nor a future one
    assert check_in(bob, klass.id, w.code(1)) == "present"
    assert check_in(cleo, klass.id, w.code(2)) == "present"


def test_the_window_closes_at_its_end(room, clock):
    _, klass, (ann, _, _) = room
    w = open_room(room, minutes=1, rotate=10)
    clock.advance(seconds=59, milliseconds=999)
    code = w.code(w.rotation(clock.now))
    clock.advance(milliseconds=1)
    refused(NotNow, CHECKIN_NOT_OPEN, check_in, ann, klass.id, code)
    assert commands.close_ended_windows() == 1 and commands.close_ended_windows() == 0  # closed (announced) once
    row = AttendanceSession.objects.get(pk=w.session_id)
    assert (row.checkin_secret, row.checkin_closes_at, row.checkin_failures) == (None, None, {})
    refused(NotNow, CHECKIN_NOT_OPEN, check_in, ann, klass.id, code)


def test_five_wrong_codes_and_the_window_is_shut_for_that_student_only(room, clock):
    _, klass, (ann, bob, _) = room
    w = open_room(room, minutes=10)
    right = w.code(0)
    for _ in range(5):
        refused(Invalid, INVALID_CODE, check_in, ann, klass.id, other_code(right))
    error_ = refused(TooManyRequests, TOO_MANY_ATTEMPTS, check_in, ann, klass.id, right)
    assert isinstance(error_, TooManyRequests) and error_.retry_after == 601  # until the window closes (+1)
    clock.advance(minutes=9)
    error_ = refused(TooManyRequests, TOO_MANY_ATTEMPTS, check_in, ann, klass.id, w.code(w.rotation(clock.now)))
    assert isinstance(error_, TooManyRequests) and error_.retry_after == 61
    assert check_in(bob, klass.id, w.code(w.rotation(clock.now))) == "present"  # others are not affected
    # Refused before the code is compared, the 6th and 7th are not counted; a right code is given back.
    assert AttendanceSession.objects.get(pk=w.session_id).checkin_failures == {ann.id: 5, bob.id: 0}


def test_a_right_code_is_not_counted_as_a_wrong_one(room, clock):
    teacher, klass, (ann, _, _) = room
    w = open_room(room)
    for _ in range(4):
        refused(Invalid, INVALID_CODE, check_in, ann, klass.id, other_code(w.code(0)))
    commands.mark_attendance(selectors.active_session(teacher.id), ann.id, "absent", teacher.id)
    for _ in range(3):  # right, but already marked: never counted
        refused(NotNow, ALREADY_MARKED, check_in, ann, klass.id, w.code(0))
    refused(Invalid, INVALID_CODE, check_in, ann, klass.id, "12345")
    refused(TooManyRequests, TOO_MANY_ATTEMPTS, check_in, ann, klass.id, w.code(0))


def test_a_reopened_window_has_new_codes_and_forgets_wrong_ones(room, clock):
    teacher, klass, (ann, _, _) = room
    w = open_room(room)
    for _ in range(5):
        refused(Invalid, INVALID_CODE, check_in, ann, klass.id, other_code(w.code(0)))
    refused(TooManyRequests, TOO_MANY_ATTEMPTS, check_in, ann, klass.id, w.code(0))
    clock.advance(seconds=1)
    again = commands.open_checkin(selectors.active_session(teacher.id), 10, 30, None)
    assert again.secret != w.secret and again.opened_at == clock.now
    if again.code(0) != w.code(0):  # (one chance in a million that the new window's first code is the same)
        refused(Invalid, INVALID_CODE, check_in, ann, klass.id, w.code(0))
    assert check_in(ann, klass.id, again.code(0)) == "present"


def test_a_check_in_never_overwrites_a_mark(room, clock):
    teacher, klass, (ann, _, _) = room
    w = open_room(room)
    session = selectors.active_session(teacher.id)
    commands.mark_attendance(session, ann.id, "excused", teacher.id, remark="doctor")
    refused(NotNow, ALREADY_MARKED, check_in, ann, klass.id, w.code(0))
    mark = AttendanceSession.objects.get(pk=w.session_id).marks[ann.id]
    assert (mark["status"], mark["remark"], mark["source"]) == ("excused", "doctor", "teacher")


def test_check_ins_are_logged_and_persisted_by_done(room, clock):
    teacher, klass, (ann, bob, cleo) = room
    w = open_room(room, late_after=0)
    check_in(ann, klass.id, w.code(0))
    commands.mark_attendance(selectors.active_session(teacher.id), bob.id, "present", teacher.id)
    summary = commands.finish_session(selectors.active_session(teacher.id))
    assert summary == {"present": 1, "absent": 1, "late": 1, "excused": 0, "total": 3}
    records = {r.student_id: (r.status, r.by, r.source) for r in Attendance.objects.filter(session_id=w.session_id)}
    assert records == {
        ann.id: ("late", ann.id, "check-in"),
        bob.id: ("present", teacher.id, "teacher"),
        cleo.id: ("absent", teacher.id, "done"),
    }
    changes = list(AttendanceChange.objects.filter(session_id=w.session_id).values_list("student_id", "by", "source"))
    assert changes == [(ann.id, ann.id, "check-in"), (bob.id, teacher.id, "teacher"), (cleo.id, teacher.id, "done")]
    row = AttendanceSession.objects.get(pk=w.session_id)
    assert (row.checkin_secret, row.checkin_closes_at) == (None, None)  # DONE closed the window


def test_a_new_start_closes_the_replaced_sessions_window(room, clock):
    teacher, klass, (ann, _, _) = room
    w = open_room(room)
    commands.start_session(teacher, klass.id)
    refused(NotNow, CHECKIN_NOT_OPEN, check_in, ann, klass.id, w.code(0))
    assert AttendanceSession.objects.get(pk=w.session_id).checkin_secret is None
    assert commands.close_ended_windows() == 0


def test_an_expired_sessions_window_is_closed_by_the_upkeep(room, clock, settings):
    _, klass, (ann, _, _) = room
    w = open_room(room, minutes=240)
    idle = clock.now - timedelta(seconds=settings.SESSION_TTL_SECONDS + 1)
    AttendanceSession.objects.filter(pk=w.session_id).update(updated_at=idle)  # idle past the TTL
    refused(NotFound, NO_SESSION, check_in, ann, klass.id, w.code(0))
    assert commands.close_ended_windows() == 1 and commands.close_ended_windows() == 0


def test_the_upkeep_takes_the_windows_due_first_whatever_its_batch(room, clock):
    """Open windows that are not due never fill the upkeep's batch: with a batch of one and an earlier-opened
    window still open, the one past its end is closed."""
    other = make_class(make_user("teacher"), [make_user("student")])
    due = commands.open_checkin(commands.start_session(other.teacher, other.id), 1, 30, None)
    clock.advance(seconds=30)
    still_open = open_room(room, minutes=240)  # started later: first in the sessions' own order
    clock.advance(minutes=2)
    assert commands.close_ended_windows(limit=1) == 1
    assert AttendanceSession.objects.get(pk=due.session_id).checkin_secret is None
    assert AttendanceSession.objects.get(pk=still_open.session_id).checkin_secret == still_open.secret
    assert commands.close_ended_windows(limit=1) == 0


def test_http_checks_enrolment_before_the_session(room):
    teacher, klass, (ann, _, _) = room
    outsider = make_user("student")
    for class_id in (klass.id, MISSING_ID, MALFORMED_ID):
        refused(Forbidden, NOT_ENROLLED, check_in, outsider, class_id, "123456")
    refused(NotFound, NO_SESSION, check_in, ann, klass.id, "123456")
    commands.start_session(teacher, klass.id)
    refused(NotNow, CHECKIN_NOT_OPEN, check_in, ann, klass.id, "123456")


def test_the_window_survives_in_the_record_alone(room, clock):
    """Nothing but the database: a window read back from its row gives the same codes (another process, or
    after a restart)."""
    teacher, _, _ = room
    w = open_room(room, rotate=10)
    again = selectors.teacher_window(teacher.id)
    assert again == w and [again.code(n) for n in range(5)] == [w.code(n) for n in range(5)]


# --- the migration of existing rows ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_migration_leaves_existing_sessions_without_a_window_and_ready_for_one():
    executor = MigrationExecutor(connection)
    executor.migrate([("live", "0007_marking"), ("classes", "0001_initial")])
    old = executor.loader.project_state([("live", "0007_marking"), ("classes", "0001_initial")]).apps
    OldUser, OldClass = old.get_model("accounts", "User"), old.get_model("classes", "Class")
    OldEnrollment, OldSession = old.get_model("classes", "Enrollment"), old.get_model("live", "AttendanceSession")
    teacher = OldUser.objects.create(email="t@example.com", name="T", role="teacher")
    student = OldUser.objects.create(email="s@example.com", name="S", role="student")
    klass = OldClass.objects.create(class_name="C", teacher_id=teacher.pk)
    OldEnrollment.objects.create(klass_id=klass.pk, student_id=student.pk)
    now = commands.utc_now()
    live = OldSession.objects.create(klass_id=klass.pk, teacher_id=teacher.pk, state="live", marks={},
                                     started_at=now, updated_at=now)
    OldSession.objects.create(klass_id=klass.pk, teacher_id=teacher.pk, state="persisted", marks={},
                              started_at=now - timedelta(days=1), updated_at=now, ended_at=now)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    rows = list(AttendanceSession.objects.order_by("started_at"))
    assert [(r.checkin_secret, r.checkin_closes_at, r.checkin_failures or {}) for r in rows] == [(None, None, {})] * 2
    assert [Window.from_row(r) for r in rows] == [None, None]
    assert commands.close_ended_windows() == 0
    # The live session migrated takes a window, and wrong codes are counted on it.
    from accounts.models import User

    session = selectors.active_session(teacher.pk)
    assert session.id == live.pk
    w = commands.open_checkin(session, 10, 30, None)
    ann = User.objects.get(pk=student.pk)
    refused(Invalid, INVALID_CODE, check_in, ann, klass.pk, other_code(w.code(0), w.code(1)))
    assert check_in(ann, klass.pk, w.code(w.rotation(commands.utc_now()))) == "present"


# --- over the socket (in-process and over the wire) -----------------------------------------------------------


async def open_window(room, **data: Any) -> dict[str, Any]:
    """CHECKIN_OPEN: everyone gets CHECKIN_OPENED; then the teacher (only) its first CHECKIN_CODE, returned."""
    await room.teacher_ws.send(frame("CHECKIN_OPEN", data))
    first = await room.teacher_ws.recv()
    assert first["event"] == "CHECKIN_OPENED" and set(first["data"]) == {"closesAt"}, first
    assert ISO_MS_Z.match(first["data"]["closesAt"]), first
    await recv_all(first, *room.student_ws)
    code = await room.teacher_ws.recv()
    assert code["event"] == "CHECKIN_CODE" and set(code["data"]) == {"code", "expiresAt", "url"}, code
    assert CODE.match(code["data"]["code"]) and ISO_MS_Z.match(code["data"]["expiresAt"]), code
    return {**code["data"], "closesAt": first["data"]["closesAt"]}


async def http(live_site, method: str, path: str, who: Any, body: Any = ...) -> Any:
    if method == "GET":
        return await live_site._run(live_site.site.get, path, who)
    return await live_site._run(live_site.site.post, path, body, who)


async def test_check_in_over_the_socket_and_http(live_site, live_room):
    room = live_room
    code = await open_window(room, minutes=15, rotateSeconds=120)
    opened = datetime.fromisoformat(code["closesAt"]) - timedelta(minutes=15)
    assert datetime.fromisoformat(code["expiresAt"]) == opened + timedelta(seconds=120)
    assert code["url"].endswith(f"/#/check-in/{room.class_id}/{code['code']}"), code
    assert re.match(r"^https?://[^/]+/#/", code["url"]), code
    await silent_all(*room.student_ws)  # the code goes to the teacher only
    ann, bob, cleo = room.students

    await room.student_ws[0].send(frame("CHECK_IN", {"code": code["code"]}))
    await recv_all(marked(ann.id, "present"), room.student_ws[0], room.teacher_ws, *room.student_ws[1:])
    body = {"classId": room.class_id, "code": f" {code['code']}  "}  # trimmed
    response = await http(live_site, "POST", "/attendance/check-in", bob, body)
    assert assert_ok(response) == {"classId": room.class_id, "status": "present"}
    await recv_all(marked(bob.id, "present"), room.teacher_ws, *room.student_ws)

    active = assert_ok(await http(live_site, "GET", "/attendance/active", room.teacher))
    assert active["checkIn"] == {
        "openedAt": active["checkIn"]["openedAt"], "closesAt": code["closesAt"], "rotateSeconds": 120,
        "lateAfterMinutes": None,
    }
    assert datetime.fromisoformat(active["checkIn"]["openedAt"]) == opened  # and neither secret nor code
    assert {sid: (m["status"], m["by"], m["source"]) for sid, m in active["marks"].items()} == {
        ann.id: ("present", ann.id, "check-in"), bob.id: ("present", bob.id, "check-in"),
    }
    state = assert_ok(await http(live_site, "GET", f"/class/{room.class_id}/check-in", cleo))
    assert state == {"classId": room.class_id, "open": True, "closesAt": code["closesAt"]}

    await room.teacher_ws.send(frame("CHECKIN_CLOSE"))
    await recv_all(CLOSED, room.teacher_ws, *room.student_ws)
    assert await room.student_ws[2].ask(frame("CHECK_IN", {"code": code["code"]})) == error(CHECKIN_NOT_OPEN)
    state = assert_ok(await http(live_site, "GET", f"/class/{room.class_id}/check-in", cleo))
    assert state == {"classId": room.class_id, "open": False, "closesAt": None}
    assert assert_ok(await http(live_site, "GET", "/attendance/active", room.teacher))["checkIn"] is None
    assert await room.teacher_ws.ask(frame("CHECKIN_CLOSE")) == error(CHECKIN_NOT_OPEN)


async def test_late_at_once_with_late_after_zero_and_every_socket_error(live_site, live_room):
    room = live_room
    ann, bob, cleo = room.students
    assert await room.student_ws[0].ask(frame("CHECK_IN", {"code": "123456"})) == error(CHECKIN_NOT_OPEN)
    code = (await open_window(room, lateAfterMinutes=0))["code"]
    wrong = other_code(code)
    assert await room.teacher_ws.ask(frame("CHECK_IN", {"code": code})) == error(STUDENT_ONLY)
    assert await room.student_ws[0].ask(frame("CHECKIN_OPEN")) == error(TEACHER_ONLY)
    assert await room.student_ws[0].ask(frame("CHECKIN_CLOSE")) == error(TEACHER_ONLY)
    for data in (None, {}, {"code": 123456}, {"code": ""}, {"code": "1" * 33}, {"code": code, "classId": 5}):
        assert await room.student_ws[0].ask(frame("CHECK_IN", data)) == error(INVALID_FORMAT), data
    assert await room.student_ws[0].ask(frame("CHECK_IN", {"code": wrong})) == error(INVALID_CODE)
    for class_id in (MISSING_ID, MALFORMED_ID):  # not a class of the student's: no session of theirs
        assert await room.student_ws[0].ask(frame("CHECK_IN", {"code": code, "classId": class_id})) == error(NO_SESSION)
    await room.student_ws[0].send(frame("CHECK_IN", {"code": code, "classId": room.class_id}))
    await recv_all(marked(ann.id, "late"), room.student_ws[0], room.teacher_ws, *room.student_ws[1:])
    assert await room.student_ws[0].ask(frame("CHECK_IN", {"code": code})) == error(ALREADY_MARKED)
    await room.teacher_ws.send(frame("ATTENDANCE_MARKED", {"studentId": bob.id, "status": "absent"}))
    await recv_all(marked(bob.id, "absent"), room.teacher_ws, *room.student_ws)
    assert await room.student_ws[1].ask(frame("CHECK_IN", {"code": code})) == error(ALREADY_MARKED)
    # DONE: the window closes first, then the session; a check-in after it finds no session.
    await room.teacher_ws.send(frame("DONE"))
    await recv_all(CLOSED, room.teacher_ws, *room.student_ws)
    await recv_all(done(0, 2, 3, late=1), room.teacher_ws, *room.student_ws)
    assert await room.student_ws[2].ask(frame("CHECK_IN", {"code": code})) == error(NO_SESSION)
    response = await http(live_site, "POST", "/attendance/check-in", cleo, {"classId": room.class_id, "code": code})
    assert_error(response, 404, NO_SESSION)
    assert await room.teacher_ws.ask(frame("CHECKIN_OPEN")) == error(NO_SESSION)


@pytest.mark.parametrize(
    "data",
    [
        {"minutes": 0}, {"minutes": 241}, {"rotateSeconds": 9}, {"rotateSeconds": 301}, {"lateAfterMinutes": -1},
        {"lateAfterMinutes": 241}, {"minutes": "10"}, {"minutes": 10.5}, {"minutes": True}, {"minutes": None},
    ],
    ids=str,
)
async def test_open_out_of_range_is_an_invalid_message(live_site, live_room, data):
    assert await live_room.teacher_ws.ask(frame("CHECKIN_OPEN", data)) == error(INVALID_FORMAT)
    await silent_all(live_room.teacher_ws, *live_room.student_ws)


async def test_the_ranges_bounds_are_accepted_and_a_reopen_announces_the_new_window(live_site, live_room):
    room = live_room
    first = await open_window(room, minutes=1, rotateSeconds=10, lateAfterMinutes=0)
    second = await open_window(room, minutes=240, rotateSeconds=300, lateAfterMinutes=240)
    assert second["closesAt"] > first["closesAt"]
    if second["code"] != first["code"]:  # the old window's codes died with it (a one-in-a-million tie aside)
        assert await room.student_ws[0].ask(frame("CHECK_IN", {"code": first["code"]})) == error(INVALID_CODE)
    await room.student_ws[1].send(frame("CHECK_IN", {"code": second["code"]}))
    await recv_all(marked(room.students[1].id, "present"), room.student_ws[1], room.teacher_ws)


async def test_wrong_codes_over_the_socket_and_http_count_together(live_site, live_room):
    room = live_room
    ann = room.students[0]
    code = (await open_window(room))["code"]
    wrong = other_code(code)
    body = {"classId": room.class_id, "code": wrong}
    for _ in range(3):
        assert await room.student_ws[0].ask(frame("CHECK_IN", {"code": wrong})) == error(INVALID_CODE)
    for _ in range(2):
        assert_error(await http(live_site, "POST", "/attendance/check-in", ann, body), 400, INVALID_CODE)
    assert await room.student_ws[0].ask(frame("CHECK_IN", {"code": code})) == error(TOO_MANY_ATTEMPTS)
    response = await http(live_site, "POST", "/attendance/check-in", ann, {**body, "code": code})
    assert_error(response, 429, TOO_MANY_ATTEMPTS)
    assert 500 <= int(response.headers["Retry-After"]) <= 601  # the window's 10 minutes (at most 900)
    # Another student of the class is not affected.
    await room.student_ws[1].send(frame("CHECK_IN", {"code": code}))
    await recv_all(marked(room.students[1].id, "present"), room.student_ws[1], room.teacher_ws)


async def test_a_code_of_another_classs_window_is_refused(live_site):
    """A student of two classes, both with a window open: the other class's code does not check in here."""
    a, b = await live_site.classroom(1), await live_site.classroom(0)
    ann = a.students[0]
    await live_site.enrol(b.teacher, b.class_id, ann)
    for room in (a, b):
        await live_site.start(room.teacher, room.class_id)
        room.teacher_ws = await live_site.open(room.teacher)
    ann_ws = await live_site.open(ann)
    a.student_ws = b.student_ws = [ann_ws]
    code_a = (await open_window(a))["code"]
    code_b = (await open_window(b))["code"]
    if code_a == code_b:
        pytest.skip("the two windows drew the same code (one chance in a million)")
    response = await http(live_site, "POST", "/attendance/check-in", ann, {"classId": a.class_id, "code": code_b})
    assert_error(response, 400, INVALID_CODE)
    assert await ann_ws.ask(frame("CHECK_IN", {"code": code_b, "classId": a.class_id})) == error(INVALID_CODE)
    # Without classId: the most recently started session with an open window (b's).
    await ann_ws.send(frame("CHECK_IN", {"code": code_b}))
    await recv_all(marked(ann.id, "present"), ann_ws, b.teacher_ws)
    await a.teacher_ws.silent()  # class a's teacher saw nothing of class b's check-in
    await ann_ws.send(frame("CHECK_IN", {"code": code_a, "classId": a.class_id}))
    await recv_all(marked(ann.id, "present"), ann_ws, a.teacher_ws)


async def test_a_new_start_closes_the_window_of_the_session_it_replaces(live_site, live_room):
    room = live_room
    code = (await open_window(room))["code"]
    await live_site.start(room.teacher, room.class_id)
    await recv_all(CLOSED, room.teacher_ws, *room.student_ws)
    assert await room.student_ws[0].ask(frame("CHECK_IN", {"code": code})) == error(CHECKIN_NOT_OPEN)


async def test_a_teacher_socket_that_connects_during_a_window_gets_the_code_at_once(live_site, live_room):
    room = live_room
    code = await open_window(room, rotateSeconds=300)
    again = await live_site.open(room.teacher)  # a reload of the projector view
    reply = await again.recv()
    assert reply == {"event": "CHECKIN_CODE", "data": {k: code[k] for k in ("code", "expiresAt", "url")}}
    student = await live_site.open(room.students[0])
    await student.silent()  # a student's socket gets no code


# --- HTTP: who may, and the order of checks (both ways) -----------------------------------------------------


def test_http_order_of_checks(site):
    teacher, ann, outsider = site.person("teacher"), site.person("student"), site.person("student")
    class_id = site.new_class(teacher, [ann])
    path = "/attendance/check-in"
    assert_error(site.post(path, {"classId": class_id, "code": "123456"}), 401, UNAUTHORIZED)
    assert_error(site.post(path, {"classId": class_id, "code": "x"}, "not-a-token"), 401, UNAUTHORIZED)
    assert_error(site.post(path, {"classId": class_id, "code": "x"}, teacher), 403, STUDENT_REQUIRED)
    assert_error(site.post(path, {"classId": MISSING_ID}, teacher), 403, STUDENT_REQUIRED)  # role before schema
    for body in ({"classId": class_id}, {"code": "123456"}, {"classId": class_id, "code": 123456}, [],
                 {"classId": "", "code": "123456"}, {"classId": class_id, "code": "  "}):
        assert_error(site.post(path, body, outsider), 400, INVALID_SCHEMA)  # schema before enrolment
    for other in (class_id, MISSING_ID, MALFORMED_ID):
        assert_error(site.post(path, {"classId": other, "code": "123456"}, outsider), 403, NOT_ENROLLED)
    assert_error(site.post(path, {"classId": class_id, "code": "123456"}, ann), 404, NO_SESSION)
    site.live(teacher, class_id)
    assert_error(site.post(path, {"classId": class_id, "code": "123456"}, ann), 409, CHECKIN_NOT_OPEN)

    state = f"/class/{class_id}/check-in"
    assert_error(site.get(state), 401, UNAUTHORIZED)
    assert_error(site.get(state, teacher), 403, STUDENT_REQUIRED)
    assert_error(site.get(f"/class/{MISSING_ID}/check-in", ann), 404, "Class not found")
    assert_error(site.get(state, outsider), 403, NOT_ENROLLED)
    assert assert_ok(site.get(state, ann)) == {"classId": class_id, "open": False, "closesAt": None}


# --- in-process only: the teacher sockets' timers, the message rate ----------------------------------------------


@pytest.fixture
def local_room(communicators) -> Iterator[Any]:
    """A factory of in-process rooms: a started session, sockets of the teacher (two tabs) and a student."""

    async def make() -> Any:
        def people():
            teacher, student = make_user("teacher"), make_user("student")
            klass = make_class(teacher, [student])
            commands.start_session(teacher, klass.id)
            return teacher, student, klass

        teacher, student, klass = await database_sync_to_async(people)()
        tabs = [LocalSocket(await communicators(token_for(teacher))) for _ in range(2)]
        student_ws = LocalSocket(await communicators(token_for(student)))
        return teacher, student, klass, tabs, student_ws

    yield make


@pytest.mark.django_db(transaction=True)
async def test_the_windows_end_is_announced_once_whatever_the_number_of_teacher_sockets(local_room):
    teacher, student, klass, tabs, student_ws = await local_room()
    await tabs[0].send(frame("CHECKIN_OPEN", {"rotateSeconds": 300}))
    for ws in (*tabs, student_ws):
        assert (await ws.recv())["event"] == "CHECKIN_OPENED"
    codes = [await ws.recv() for ws in tabs]
    assert codes[0] == codes[1] and codes[0]["event"] == "CHECKIN_CODE"  # every tab shows the same code
    # The window is made to end in half a second (behind the sockets' back), and the tabs told to look again.
    end = commands.utc_now() + timedelta(milliseconds=500)
    await database_sync_to_async(
        lambda: AttendanceSession.objects.filter(klass_id=klass.id).update(checkin_closes_at=end)
    )()
    await publish(user_group(teacher.id), {"kind": "checkin"})
    # Each socket: exactly one CHECKIN_CLOSED, though both tabs' timers fired.
    got = await asyncio.gather(*(ws.drain(quiet=1.0, timeout=3) for ws in (*tabs, student_ws)))
    assert got == [[CLOSED]] * 3
    assert await database_sync_to_async(commands.close_ended_windows)() == 0


@pytest.mark.django_db(transaction=True)
async def test_each_rotation_sends_the_next_code(local_room, monkeypatch):
    """Rotation in time, sped up: the check-in's clock runs 20 times faster (a 10 s rotation takes 0.5 s) and the
    teacher sockets' timers sleep accordingly; at the window's end a timer closes it."""
    loop = asyncio.get_running_loop()
    start, began, factor = commands.utc_now(), loop.time(), 20

    def fast() -> datetime:  # to the millisecond, as utc_now
        return start + timedelta(milliseconds=int((loop.time() - began) * factor * 1000))

    async def sleep_until(self, moment: datetime) -> None:
        await asyncio.sleep(max(0.0, (moment - fast()).total_seconds()) / factor + 0.005)

    monkeypatch.setattr(commands, "utc_now", fast)
    monkeypatch.setattr(AttendanceConsumer, "sleep_until", sleep_until)
    teacher, student, klass, tabs, student_ws = await local_room()
    await tabs[0].send(frame("CHECKIN_OPEN", {"rotateSeconds": 10, "minutes": 1}))
    assert (await tabs[0].recv())["event"] == "CHECKIN_OPENED"
    sent = [await tabs[0].recv(timeout=3) for _ in range(6)]  # rotations 0–5 of the minute
    assert [m["event"] for m in sent] == ["CHECKIN_CODE"] * 6
    w = await database_sync_to_async(selectors.teacher_window)(teacher.id)
    assert [m["data"]["code"] for m in sent] == [w.code(n) for n in range(6)]
    assert [m["data"]["expiresAt"] for m in sent] == [iso_z(w.expires_at(n)) for n in range(6)]
    assert [datetime.fromisoformat(m["data"]["expiresAt"]) - w.opened_at for m in sent] == [
        timedelta(seconds=10 * (n + 1)) for n in range(6)
    ]
    assert await tabs[0].recv(timeout=3) == CLOSED  # at the minute's end, closed by a timer
    assert (await student_ws.drain())[-1] == CLOSED


@pytest.mark.django_db(transaction=True)
async def test_check_in_counts_toward_the_message_rate(local_room, settings):
    settings.WS_RATE_BURST, settings.WS_RATE_PER_SECOND = 3, 0.01
    teacher, student, klass, tabs, student_ws = await local_room()
    for _ in range(3):
        assert await student_ws.ask(frame("CHECK_IN", {"code": "123456"})) == error(CHECKIN_NOT_OPEN)
    assert await student_ws.ask(frame("CHECK_IN", {"code": "123456"})) == error(TOO_MANY_MESSAGES)
