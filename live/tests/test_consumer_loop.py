"""The consumer's own message loop (AttendanceConsumer.serve, in place of Channels' AsyncConsumer.__call__) and
the ids of its sockets."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from channels.exceptions import StopConsumer

from live import consumers
from live.consumers import AttendanceConsumer


async def test_frames_already_waiting_let_other_sockets_go_between_them() -> None:
    served: list[Any] = []
    waiting = [{"type": "websocket.receive", "n": n} for n in range(3)]
    consumer = AttendanceConsumer()

    async def receive() -> dict[str, Any]:
        return waiting.pop(0)  # each already there: no wait of its own

    async def dispatch(message: dict[str, Any]) -> None:
        served.append(message["n"])
        if message["n"] == 2:
            raise StopConsumer  # (as websocket_disconnect ends a consumer)

    async def another_socket() -> None:
        for _ in range(3):
            served.append("other")
            await asyncio.sleep(0)

    consumer.dispatch = dispatch  # type: ignore[method-assign]
    await asyncio.gather(consumer.serve({"type": "websocket"}, receive, None), another_socket())
    assert served.index("other") < served.index(1)  # not every waiting frame first
    assert consumer.scope == {"type": "websocket"} and consumer.channel_layer is None


def test_socket_ids_are_unique_and_a_forked_process_draws_a_tag_of_its_own() -> None:
    ids = {consumers.next_member_id() for _ in range(1000)}
    assert len(ids) == 1000
    tag = consumers.next_member_id().split("-")[0]
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report its tag and leave at once
        os.write(writer, consumers.next_member_id().split("-")[0].encode())
        os._exit(0)
    os.close(writer)
    child_tag = os.read(reader, 64).decode()
    os.close(reader)
    os.waitpid(child, 0)
    assert child_tag and child_tag != tag
