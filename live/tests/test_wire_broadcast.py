"""Broadcasts over the wire through the direct path (attendance_site.daphne_ext, attendance_site.write_now):
every frame reaches every socket, once, in order — a reader that keeps up, a reader that stops reading (a
small receive window; its frames wait in the kernel's buffers), and the teacher, whose own echoes go
through ASGI. Partial writes and EAGAIN, which loopback's autotuned buffers make rare here, are driven
deterministically on real sockets in attendance_site/tests/test_write_now.py.

A server of its own with the limits off: the teacher sends hundreds of frames as fast as it can.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.servers import DaphneServer
from tests.support import UNLIMITED, Person, create_class, enrol, mark, marked, own_wire_server, recv, start

pytestmark = pytest.mark.wire

MARKS = 600  # about 65 KB of frames, sent as fast as the teacher can


@pytest.fixture(scope="module")
def unlimited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    with own_wire_server(tmp_path_factory.mktemp("broadcast"), UNLIMITED) as server:
        yield server


@pytest.fixture
async def sockets(unlimited_server: DaphneServer) -> AsyncIterator[Any]:
    async with AsyncExitStack() as stack:

        async def open_(token: str, stalled: bool = False) -> ClientConnection:
            url = f"{unlimited_server.ws_url}?token={token}"
            sock = None
            if stalled:
                # A small receive window, and a client that stops reading from TCP once it holds one message.
                address = urlsplit(unlimited_server.ws_url)
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.connect((address.hostname, address.port))
                sock.setblocking(False)
            options = {"max_queue": 1, "sock": sock} if stalled else {}
            return await stack.enter_async_context(
                connect(url, open_timeout=5, close_timeout=2, max_size=None, **options)
            )

        yield open_


async def received(ws: ClientConnection, n: int) -> list[dict[str, Any]]:
    return [await recv(ws, timeout=30) for _ in range(n)]


async def test_every_frame_reaches_a_fast_and_a_stalled_reader_once_and_in_order(unlimited_server, sockets):
    with httpx.Client(base_url=unlimited_server.http_url, timeout=30) as api:
        teacher = Person(api, "teacher")
        students = [Person(api, "student") for _ in range(3)]
        class_id = create_class(api, teacher)
        enrol(api, teacher, class_id, *students)
        start(api, teacher, class_id)
    teacher_ws = await sockets(teacher.token)
    fast = await sockets(students[0].token)
    stalled = await sockets(students[1].token, stalled=True)
    sent = [(students[i % 3].id, "present" if i % 2 else "absent") for i in range(MARKS)]
    expected = [marked(student_id, status) for student_id, status in sent]

    async def teacher_marks() -> list[dict[str, Any]]:
        for student_id, status in sent:
            await teacher_ws.send(mark(student_id, status))
        return await received(teacher_ws, MARKS)

    echoes, fast_got = await asyncio.gather(teacher_marks(), received(fast, MARKS))
    assert echoes == expected
    assert fast_got == expected
    # The stalled reader now reads everything the server kept for it.
    assert await received(stalled, MARKS) == expected
