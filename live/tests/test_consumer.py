"""The WebSocket consumer in-process (Channels' WebsocketCommunicator, in-memory layer and store): what only an
in-process test can do (monkeypatched services, direct database writes, cancelling the consumer). The contract
scenarios that hold both ways are in test_socket.py."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from channels.db import database_sync_to_async
from django.db import DatabaseError

from classes.models import Enrollment
from live import commands, selectors
from live.models import Attendance
from tests.support import (
    CLOSE_POLICY_VIOLATION,
    INVALID_FORMAT,
    NO_SESSION,
    NOT_YET_UPDATED,
    STUDENT_NOT_FOUND,
    WS_UNAUTHORIZED,
    comm_ask,
    comm_recv,
    comm_silent,
    done,
    error,
    forge_token,
    frame,
    make_class,
    make_user,
    mark,
    marked,
    my_status,
    summary,
    token_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


class Room:
    def __init__(self, n_students: int = 2) -> None:
        self.teacher = make_user("teacher")
        self.students = [make_user("student") for _ in range(n_students)]
        self.klass = make_class(self.teacher, self.students)
        self.outsider = make_user("student")


@pytest.fixture
def room(transactional_db) -> Room:
    return Room()


async def start(room: Room) -> None:
    await database_sync_to_async(commands.start_session)(room.teacher, room.klass.id)


async def rows(klass) -> dict[str, str]:
    return {
        sid: status async for sid, status in Attendance.objects.filter(klass=klass).values_list("student_id", "status")
    }


async def persisted(klass, student) -> dict[str, str | None]:
    """What GET /class/:id/my-attendance would answer."""
    return (await database_sync_to_async(selectors.my_persisted_status)(klass.id, student)).model_dump()


# --- connecting ----------------------------------------------------------------------------------


async def test_an_inactive_users_token_gets_error_then_close_1008(communicators, transactional_db):
    """The other bad tokens are in test_socket.py; deactivating a user over the wire takes a manage.py shell."""
    def make_inactive():
        user = make_user("student")
        user.is_active = False
        user.save()
        return user

    inactive = await database_sync_to_async(make_inactive)()
    ws = await communicators(token_for(inactive))
    assert await comm_recv(ws) == error(WS_UNAUTHORIZED)
    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION}
    # Nothing is served to it afterwards.
    await ws.send_to(text_data=frame("MY_ATTENDANCE"))
    await comm_silent(ws)


async def test_a_burst_of_connects_is_looked_up_together_and_each_socket_gets_its_own(communicators, room,
                                                                                       monkeypatch):
    batches = []
    lookup = selectors.connect_participants
    monkeypatch.setattr(selectors, "connect_participants", lambda claims: batches.append(len(claims)) or lookup(claims))
    await start(room)
    users = [room.teacher, *room.students, room.outsider]
    sockets = await asyncio.gather(*(communicators(token_for(u)) for u in users))
    assert sum(batches) == len(users) and len(batches) < len(users)
    await sockets[0].send_to(text_data=mark(room.students[0].id, "present"))
    for ws in sockets[:-1]:  # the class's teacher and students; not the outsider
        assert (await comm_recv(ws))["event"] == "ATTENDANCE_MARKED"
    await comm_silent(sockets[-1])
    assert await comm_ask(sockets[-1], frame("MY_ATTENDANCE")) == error(NO_SESSION)


async def test_closing_a_socket_is_clean(communicators, room):
    await start(room)
    teacher = await communicators(token_for(room.teacher))
    leaving = await communicators(token_for(room.students[0]))
    staying = await communicators(token_for(room.students[1]))
    await leaving.disconnect(timeout=5)  # raises if the consumer fails while closing
    assert await comm_ask(teacher, frame("TODAY_SUMMARY")) == summary(0, 0)
    assert await comm_recv(staying) == summary(0, 0)
    await staying.disconnect(timeout=5)
    await teacher.disconnect(timeout=5)


# --- frames ----------------------------------------------------------------------------------------
async def test_after_closing_1009_the_socket_serves_nothing_more(communicators, room):
    # Over the wire Daphne closes first and drops the connection; under other servers the consumer closes.
    await start(room)
    teacher = await communicators(token_for(room.teacher))
    student = await communicators(token_for(room.students[0]))
    await teacher.send_to(text_data=frame("TODAY_SUMMARY", {"pad": "x" * (64 * 1024)}))
    assert await teacher.receive_output(timeout=5) == {"type": "websocket.close", "code": 1009}
    await teacher.send_to(text_data=mark(room.students[0].id))  # in flight as the socket closed
    assert await teacher.receive_nothing(timeout=0.3)
    await comm_silent(student)  # nothing was marked, nothing broadcast
    assert await comm_ask(student, frame("MY_ATTENDANCE")) == my_status(NOT_YET_UPDATED)


# --- roles and check order --------------------------------------------------------------------------


# --- the session's events --------------------------------------------------------------------------


async def test_a_whole_session(communicators, room):
    s1, s2 = room.students
    await start(room)
    teacher = await communicators(token_for(room.teacher))
    one = await communicators(token_for(s1))
    two = await communicators(token_for(s2))
    outsider = await communicators(token_for(room.outsider))

    assert await comm_ask(teacher, mark(s1.id, "present")) == marked(s1.id, "present")
    for ws in (one, two):
        assert await comm_recv(ws) == marked(s1.id, "present")
    assert await comm_ask(one, frame("MY_ATTENDANCE")) == my_status("present")
    assert await comm_ask(two, frame("MY_ATTENDANCE")) == my_status(NOT_YET_UPDATED)

    assert await comm_ask(teacher, frame("TODAY_SUMMARY")) == summary(1, 0)
    for ws in (one, two):
        assert await comm_recv(ws) == summary(1, 0)

    assert await comm_ask(teacher, mark(room.outsider.id, "present")) == (error(STUDENT_NOT_FOUND))
    assert await comm_ask(teacher, frame("DONE")) == done(1, 1, 2)
    for ws in (one, two):
        assert await comm_recv(ws) == done(1, 1, 2)
    await comm_silent(outsider)
    assert await rows(room.klass) == {s1.id: "present", s2.id: "absent"}

    assert await comm_ask(teacher, frame("TODAY_SUMMARY")) == error(NO_SESSION)
    assert await comm_ask(one, frame("MY_ATTENDANCE")) == error(NO_SESSION)


# --- persisting fails ---------------------------------------------------------------------------------


async def test_failed_persist_keeps_the_session_and_a_retry_persists(communicators, room, monkeypatch):
    s1, s2 = room.students
    await start(room)
    teacher = await communicators(token_for(room.teacher))
    student = await communicators(token_for(s1))
    assert await comm_ask(teacher, mark(s1.id, "present")) == marked(s1.id, "present")
    assert await comm_recv(student) == marked(s1.id, "present")

    def fail(*args, **kwargs):
        raise DatabaseError("database is gone")

    monkeypatch.setattr(Attendance.objects, "bulk_create", fail)
    reply = await comm_ask(teacher, frame("DONE"))
    assert reply.keys() == {"event", "data"} and reply["event"] == "ERROR", reply
    assert reply["data"].keys() == {"message"} and isinstance(reply["data"]["message"], str), reply
    assert reply["data"]["message"] not in ("", NO_SESSION, INVALID_FORMAT)
    assert await rows(room.klass) == {}
    assert (await persisted(room.klass, s1))["status"] is None

    # Still active, marks intact, for the teacher and the students; nobody was told it ended.
    assert await comm_ask(teacher, frame("TODAY_SUMMARY")) == summary(1, 0)
    assert await comm_recv(student) == summary(1, 0)
    assert await comm_ask(student, frame("MY_ATTENDANCE")) == my_status("present")

    monkeypatch.undo()
    assert await comm_ask(teacher, frame("DONE")) == done(1, 1, 2)
    assert await comm_recv(student) == done(1, 1, 2)
    assert await rows(room.klass) == {s1.id: "present", s2.id: "absent"}
    assert (await persisted(room.klass, s1))["status"] == "present"
    assert await comm_ask(teacher, frame("DONE")) == error(NO_SESSION)


# --- sockets follow their account and memberships (docs/production.md "What survives what") -------------


async def expect_revoked(ws, timeout: float = 5) -> None:
    assert await comm_recv(ws, timeout) == error(WS_UNAUTHORIZED)
    assert await ws.receive_output(timeout=timeout) == {"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION}


async def test_a_token_that_expires_closes_its_socket(communicators, room, settings):
    ws = await communicators(forge_token(settings.JWT_SECRET, user_id=room.students[0].id, role="student", ttl=1))
    other = await communicators(token_for(room.students[1]))
    await expect_revoked(ws, timeout=3)
    await comm_silent(other)  # only that socket


async def test_deactivating_a_user_anywhere_closes_their_sockets_at_once(communicators, room):
    sockets = [await communicators(token_for(room.students[0])) for _ in range(2)]
    other = await communicators(token_for(room.students[1]))

    def deactivate():
        user = type(room.students[0]).objects.get(pk=room.students[0].pk)
        user.is_active = False
        user.save()  # what the admin's change form does

    await database_sync_to_async(deactivate)()
    for ws in sockets:
        await expect_revoked(ws)
    await comm_silent(other)


async def test_deleting_a_user_closes_their_sockets(communicators, room):
    ws = await communicators(token_for(room.students[0]))
    await database_sync_to_async(type(room.students[0]).objects.filter(pk=room.students[0].pk).delete)()
    await expect_revoked(ws)


async def test_the_account_check_closes_sockets_that_a_notice_missed(communicators, room):
    """A user deactivated by a write that sends no signal (a bulk update, raw SQL): the periodic check."""
    from live import upkeep

    ws = await communicators(token_for(room.students[0]))
    other = await communicators(token_for(room.students[1]))
    await database_sync_to_async(type(room.students[0]).objects.filter(pk=room.students[0].pk).update)(is_active=False)
    assert await upkeep.check_accounts() == 1
    await expect_revoked(ws)
    await comm_silent(other)


async def test_an_enrolment_from_any_write_path_reaches_open_sockets(communicators, room, admin_site_client):
    """The admin's inline form saves an Enrollment: the student's open socket joins the class at once."""
    await start(room)
    late = await database_sync_to_async(make_user)("student")
    ws = await communicators(token_for(late))
    teacher = await communicators(token_for(room.teacher))
    assert await comm_ask(ws, frame("MY_ATTENDANCE")) == error(NO_SESSION)

    await database_sync_to_async(Enrollment.objects.create)(klass=room.klass, student=late)
    assert await comm_ask(teacher, mark(late.id, "absent")) == marked(late.id, "absent")
    assert await comm_recv(ws) == marked(late.id, "absent")


async def test_removing_an_enrolment_stops_the_class_reaching_that_student(communicators, room):
    await start(room)
    teacher = await communicators(token_for(room.teacher))
    removed = await communicators(token_for(room.students[0]))
    kept = await communicators(token_for(room.students[1]))
    await database_sync_to_async(Enrollment.objects.filter(klass=room.klass, student=room.students[0]).delete)()
    assert await comm_ask(teacher, frame("TODAY_SUMMARY")) == summary(0, 0)
    assert await comm_recv(kept) == summary(0, 0)
    await comm_silent(removed)
    assert await comm_ask(removed, frame("MY_ATTENDANCE")) == error(NO_SESSION)


async def test_a_notice_rolled_back_with_its_transaction_is_never_sent(communicators, room):
    """The enrolment notice waits for the commit. The transaction is the database's: Django's atomic() on SQL,
    the backend's own on a MongoDB replica set (Django's is a no-op there). A standalone MongoDB has none: the
    write stands, and so its notice is sent."""
    late = await database_sync_to_async(make_user)("student")
    ws = await communicators(token_for(late))

    def enrol_then_fail() -> bool:
        atomic = commands.transaction_if_supported()
        if atomic is None:
            Enrollment.objects.create(klass=room.klass, student=late)
            return False
        with pytest.raises(RuntimeError), atomic:
            Enrollment.objects.create(klass=room.klass, student=late)
            raise RuntimeError("rolled back")
        return True

    rolled_back = await database_sync_to_async(enrol_then_fail)()
    enrolled = await database_sync_to_async(Enrollment.objects.filter(klass=room.klass, student=late).exists)()
    assert enrolled is not rolled_back
    await start(room)
    teacher = await communicators(token_for(room.teacher))
    assert await comm_ask(teacher, frame("TODAY_SUMMARY")) == summary(0, 0)
    if rolled_back:
        await comm_silent(ws)
    else:
        assert await comm_recv(ws) == summary(0, 0)


async def test_a_broadcast_sent_right_after_connect_reaches_the_new_socket(communicators, room):
    """Groups are joined before the handshake completes: nothing sent after `open` can be missed."""
    await start(room)
    teacher = await communicators(token_for(room.teacher))
    for _ in range(20):
        student = await communicators(token_for(room.students[0]))
        assert await comm_ask(teacher, frame("TODAY_SUMMARY")) == summary(0, 0)
        assert await comm_recv(student) == summary(0, 0)
        await student.disconnect(timeout=5)


async def test_a_consumer_cancelled_mid_event_leaves_the_hub(communicators, room, monkeypatch):
    """DONE outlasting Daphne's application close timeout while the client leaves: the consumer task is
    cancelled, and no membership may outlive it."""
    from live.hub import get_hub

    await start(room)
    def slow_finish(session, origin=None):
        time.sleep(0.5)

    monkeypatch.setattr(commands, "finish_session", slow_finish)
    ws = await communicators(token_for(room.teacher))
    groups = [f"user.{room.teacher.id}", f"class.{room.klass.id}"]
    assert all(get_hub().local_members(group) for group in groups)
    await ws.send_to(text_data=frame("DONE"))
    await asyncio.sleep(0.1)
    ws.future.cancel()  # what Daphne does to an application that does not exit in time
    with contextlib.suppress(asyncio.CancelledError):
        await ws.future
    assert not any(get_hub().local_members(group) for group in groups)
