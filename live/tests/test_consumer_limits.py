"""The socket limits in-process (docs/production.md "Limits against abuse"): messages per socket, sockets per user.
Over the wire, with the default limits: test_wire_limits.py."""

from __future__ import annotations

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from attendance_site.asgi import application
from common.errors import NotFound
from common.limits import open_sockets
from live import selectors
from live.consumers import AttendanceConsumer
from tests.support import (
    CLOSE_POLICY_VIOLATION,
    INVALID_FORMAT,
    NO_SESSION,
    TOO_MANY_CONNECTIONS,
    TOO_MANY_MESSAGES,
    comm_ask,
    comm_recv,
    comm_silent,
    error,
    frame,
    make_user,
    token_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def user(role: str):
    return await database_sync_to_async(make_user)(role)


async def expect_refused(ws, message: str) -> None:
    assert await comm_recv(ws) == error(message)
    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": CLOSE_POLICY_VIOLATION}


# --- messages per socket --------------------------------------------------------------------------------------
async def test_frames_beyond_the_burst_are_not_processed_and_warned_of_once(communicators, settings):
    settings.WS_RATE_BURST, settings.WS_RATE_PER_SECOND = 3, 1
    ws = await communicators(token_for(await user("teacher")))
    # Every frame counts, a malformed one too.
    assert await comm_ask(ws, "not json") == error(INVALID_FORMAT)
    assert await comm_ask(ws, frame("TODAY_SUMMARY")) == error(NO_SESSION)
    assert await comm_ask(ws, frame("NOPE")) != error(TOO_MANY_MESSAGES)
    for _ in range(20):
        await ws.send_to(text_data=frame("TODAY_SUMMARY"))
    assert await comm_recv(ws) == error(TOO_MANY_MESSAGES)
    await comm_silent(ws)  # one warning for the lot, and none of them processed
    await asyncio.sleep(1.1)  # one token back; the socket stayed open
    assert await comm_ask(ws, frame("TODAY_SUMMARY")) == error(NO_SESSION)


async def test_a_flood_is_counted_as_it_arrives_even_while_each_frame_is_slow_to_serve(
    communicators, settings, monkeypatch
):
    """Each frame here takes 50 ms (a slow database), slower than the bucket refills (100 a second): counted
    only when served, every frame of the flood would pass. Counted on arrival, the burst and what refilled
    while they were served pass, the rest are refused with one warning."""
    settings.WS_RATE_BURST, settings.WS_RATE_PER_SECOND = 5, 100
    ws = await communicators(token_for(await user("teacher")))

    def slow_session(*args, **kwargs):
        time.sleep(0.05)
        raise NotFound(NO_SESSION)

    monkeypatch.setattr(selectors, "active_session", slow_session)
    began = time.monotonic()
    for _ in range(40):
        await ws.send_to(text_data=frame("TODAY_SUMMARY"))
    answers = []
    while not await ws.receive_nothing(timeout=1.0):
        answers.append(await comm_recv(ws))
    elapsed = time.monotonic() - began
    served = answers.count(error(NO_SESSION))
    assert answers.count(error(TOO_MANY_MESSAGES)) == 1 and served + 1 == len(answers), answers
    # The 5 of the burst, and 5 for each 50 ms frame served while the flood waited (refills are counted when
    # the next frame is taken): far fewer than the 40 sent.
    assert 5 <= served <= 12, (served, elapsed)


async def test_each_socket_has_a_bucket_of_its_own(communicators, settings):
    settings.WS_RATE_BURST, settings.WS_RATE_PER_SECOND = 2, 0.01
    teacher = await user("teacher")
    flooding, other = await communicators(token_for(teacher)), await communicators(token_for(teacher))
    for _ in range(2):
        assert await comm_ask(flooding, frame("TODAY_SUMMARY")) == error(NO_SESSION)
    assert await comm_ask(flooding, frame("TODAY_SUMMARY")) == error(TOO_MANY_MESSAGES)
    assert await comm_ask(other, frame("TODAY_SUMMARY")) == error(NO_SESSION)


async def test_a_message_rate_of_zero_is_off(communicators, settings):
    settings.WS_RATE_BURST = 0
    ws = await communicators(token_for(await user("teacher")))
    for _ in range(600):
        await ws.send_to(text_data=frame("TODAY_SUMMARY"))
    answers = [await comm_recv(ws) for _ in range(600)]
    assert answers == [error(NO_SESSION)] * 600


# --- sockets per user -----------------------------------------------------------------------------------------
async def test_a_users_socket_beyond_the_cap_is_refused_and_its_slot_comes_back(communicators, settings):
    settings.WS_MAX_SOCKETS_PER_USER = 2
    teacher, other = await user("teacher"), await user("teacher")
    first, second = await communicators(token_for(teacher)), await communicators(token_for(teacher))
    assert open_sockets.count(teacher.id) == 2
    await expect_refused(await communicators(token_for(teacher)), TOO_MANY_CONNECTIONS)
    assert open_sockets.count(teacher.id) == 2
    assert await comm_ask(await communicators(token_for(other)), frame("TODAY_SUMMARY")) == error(NO_SESSION)
    await first.disconnect(timeout=5)
    third = await communicators(token_for(teacher))
    assert await comm_ask(third, frame("TODAY_SUMMARY")) == error(NO_SESSION)
    assert await comm_ask(second, frame("TODAY_SUMMARY")) == error(NO_SESSION)


async def test_a_cap_of_zero_is_off(communicators, settings):
    settings.WS_MAX_SOCKETS_PER_USER = 0
    token = token_for(await user("student"))
    sockets = [await communicators(token) for _ in range(25)]
    assert await comm_ask(sockets[-1], frame("MY_ATTENDANCE")) == error(NO_SESSION)


async def test_a_bad_token_takes_no_slot_and_every_exit_gives_slots_back(communicators, settings, monkeypatch):
    settings.WS_MAX_SOCKETS_PER_USER = 1
    student = await user("student")
    ws = await communicators(token_for(student))
    await ws.disconnect(timeout=5)
    assert open_sockets.count(student.id) == 0
    # A consumer cancelled after taking its slot, before its handshake completed (the client gave up).
    never_accepts = asyncio.Event()

    async def hanging_accept(self, *args, **kwargs):
        await never_accepts.wait()

    monkeypatch.setattr(AttendanceConsumer, "accept", hanging_accept)
    stuck = WebsocketCommunicator(application, f"/ws?token={token_for(student)}")
    with pytest.raises(asyncio.TimeoutError):
        await stuck.connect(timeout=1)
    assert open_sockets.count(student.id) == 0
    monkeypatch.undo()
    ws = await communicators(token_for(student))
    assert await comm_ask(ws, frame("MY_ATTENDANCE")) == error(NO_SESSION)
