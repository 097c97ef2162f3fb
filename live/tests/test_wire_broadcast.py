"""Broadcasts over the wire through the direct path (server.daphne_ext, server.write_now):
every frame reaches every socket, once, in order — a reader that keeps up, a reader that stops reading (a
small receive window; its frames wait in the kernel's buffers), and the teacher, whose own echoes go
through ASGI. Partial writes and EAGAIN, which loopback's autotuned buffers make rare here, are driven
deterministically on real sockets in server/tests/test_write_now.py.

On the session's server with the limits off (`unlimited_server`): the teacher sends hundreds of frames as
fast as it can.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from tests.servers import DaphneServer
from tests.support import mark, marked, new_classroom, recv, start

pytestmark = pytest.mark.wire

MARKS = 600  # about 65 KB of frames, sent as fast as the teacher can


def stalled_socket(server: DaphneServer) -> dict[str, Any]:
    """Connection options for a client that stops reading: a small receive window, and no more read from TCP
    once it holds one message."""
    address = urlsplit(server.ws_url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((address.hostname, address.port))
    sock.setblocking(False)
    return {"sock": sock, "max_queue": 1}


async def received(ws: ClientConnection, n: int) -> list[dict[str, Any]]:
    return [await recv(ws, timeout=30) for _ in range(n)]


async def test_every_frame_reaches_a_fast_and_a_stalled_reader_once_and_in_order(unlimited_server, wire_sockets):
    with httpx.Client(base_url=unlimited_server.http_url, timeout=30) as api:
        room = new_classroom(api, 3)
        start(api, room.teacher, room.class_id)
    students = room.students
    teacher_ws = await wire_sockets(unlimited_server, room.teacher)
    fast = await wire_sockets(unlimited_server, students[0])
    stalled = await wire_sockets(unlimited_server, students[1], **stalled_socket(unlimited_server))
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
