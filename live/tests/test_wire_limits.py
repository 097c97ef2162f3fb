"""Over the wire: the socket limits (docs/production.md "Limits against abuse") with the default limits on the shared
wire server — bursts of 500 frames refilled at 50 a second per socket, 20 sockets per user — and off."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support import (
    CLOSE_POLICY_VIOLATION,
    NO_SESSION,
    TOO_MANY_CONNECTIONS,
    TOO_MANY_MESSAGES,
    Person,
    ask,
    drain,
    error,
    expect_close,
    frame,
    mark,
    marked,
    recv,
    start,
)

pytestmark = pytest.mark.wire

BURST, PER_SECOND, SOCKETS_PER_USER = 500, 50, 20
FLOOD = 1000


async def test_a_flood_gets_errors_beyond_the_burst_while_the_class_keeps_receiving_broadcasts(
    api, classroom, ws_open
):
    room = classroom(1)
    start(api, room.teacher, room.class_id)
    flooding = await ws_open(room.teacher.token)
    calm = await ws_open(room.teacher.token)  # the same teacher's other socket: a bucket of its own
    student = await ws_open(room.students[0].token)

    began = time.monotonic()
    for _ in range(FLOOD):
        await flooding.send(frame("TODAY_SUMMARY"))
    # While the flood is being worked through, another socket's event still goes through to the class.
    await calm.send(mark(room.students[0].id))

    flooder_got = await drain(flooding, quiet=1.5, timeout=20)
    elapsed = time.monotonic() - began
    calm_got, student_got = await asyncio.gather(drain(calm, 1.0, 20), drain(student, 1.0, 20))

    mark_broadcast = marked(room.students[0].id, "present")
    answered = [m for m in flooder_got if m["event"] == "TODAY_SUMMARY"]
    others = [m for m in flooder_got if m["event"] != "TODAY_SUMMARY"]
    warnings = [m for m in others if m == error(TOO_MANY_MESSAGES)]
    assert len(warnings) + 1 == len(others) and mark_broadcast in others, others  # and nothing else
    assert BURST <= len(answered) <= BURST + PER_SECOND * (elapsed + 1), (len(answered), elapsed)
    assert 1 <= len(warnings) <= elapsed + 1, (len(warnings), elapsed)  # at most one a second
    # Every frame that was processed reached the class; the others were not processed at all.
    assert [m for m in student_got if m["event"] == "TODAY_SUMMARY"] == answered
    assert [m for m in calm_got if m["event"] == "TODAY_SUMMARY"] == answered
    assert mark_broadcast in student_got and mark_broadcast in calm_got
    assert error(TOO_MANY_MESSAGES) not in calm_got + student_got
    # The flooding socket stayed open, and is served again as its bucket refills.
    await asyncio.sleep(0.2)
    assert (await ask(flooding, mark(room.students[0].id, "absent"))) == marked(room.students[0].id, "absent")
    assert await recv(student) == marked(room.students[0].id, "absent")


async def test_the_21st_socket_of_one_user_is_refused_and_its_slot_comes_back(make_person, ws_open, wire_server):
    person, other = make_person("student"), make_person("student")
    sockets = [await ws_open(person.token) for _ in range(SOCKETS_PER_USER)]
    answers = await asyncio.gather(*(ask(ws, frame("MY_ATTENDANCE")) for ws in sockets))
    assert answers == [error(NO_SESSION)] * SOCKETS_PER_USER
    refused = await ws_open(person.token)
    assert await recv(refused) == error(TOO_MANY_CONNECTIONS)
    await expect_close(refused, CLOSE_POLICY_VIOLATION)
    assert await ask(await ws_open(other.token), frame("MY_ATTENDANCE")) == error(NO_SESSION)
    # Closing one gives its slot back (once the server has seen the close).
    await sockets[0].close()
    deadline = time.monotonic() + 5
    while True:
        again = await ws_open(person.token)
        answer = await ask(again, frame("MY_ATTENDANCE"))
        if answer == error(NO_SESSION) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert answer == error(NO_SESSION)


async def test_socket_limits_of_zero_are_off(unlimited_server):
    with httpx.Client(base_url=unlimited_server.http_url, timeout=10) as client:
        person = Person(client, "teacher")
    url = f"{unlimited_server.ws_url}?token={person.token}"
    async with AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(connect(url, open_timeout=5)) for _ in range(SOCKETS_PER_USER + 5)]
        flooding = sockets[-1]
        for _ in range(FLOOD):
            await flooding.send(frame("TODAY_SUMMARY"))
        answers = [await recv(flooding, timeout=20) for _ in range(FLOOD)]
        assert answers == [error(NO_SESSION)] * FLOOD
