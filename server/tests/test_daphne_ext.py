"""server.daphne_ext.ApplicationQueue: the WebSocket's ASGI input queue (Daphne puts, the
application gets). Over the wire, every WebSocket test of the suite runs through it."""

from __future__ import annotations

import asyncio

import pytest

from server.daphne_ext import ApplicationQueue


def message(n: int) -> dict[str, object]:
    return {"type": "websocket.receive", "text": str(n)}


async def test_messages_come_out_in_the_order_they_went_in() -> None:
    queue = ApplicationQueue()
    for n in range(5):
        queue.put_nowait(message(n))
    assert queue.qsize() == 5
    assert [await queue.get() for _ in range(5)] == [message(n) for n in range(5)]
    assert queue.qsize() == 0


async def test_a_waiting_receiver_gets_the_next_message_and_the_queue_holds_nothing_after() -> None:
    queue = ApplicationQueue()
    receiver = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not receiver.done()
    queue.put_nowait(message(1))
    assert await receiver == message(1)
    # Nothing allocated while empty: that is the point of this queue (asyncio.Queue keeps four deques).
    assert (queue._messages, queue._waiter, queue._more_waiters) == (None, None, None)
    assert not hasattr(queue, "__dict__")


async def test_receivers_waiting_together_are_served_first_come_first_served() -> None:
    queue = ApplicationQueue()
    first, second = asyncio.ensure_future(queue.get()), asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(message(1))
    queue.put_nowait(message(2))
    assert (await first, await second) == (message(1), message(2))


async def test_any_receiver_cancelled_while_waiting_leaves_the_others_in_line() -> None:
    queue = ApplicationQueue()
    receivers = [asyncio.ensure_future(queue.get()) for _ in range(4)]
    await asyncio.sleep(0)
    for cancelled in (receivers[0], receivers[2]):  # the first in line and one behind it
        cancelled.cancel()
    await asyncio.gather(*receivers[::2], return_exceptions=True)
    queue.put_nowait(message(1))
    queue.put_nowait(message(2))
    queue.put_nowait(message(3))
    assert (await receivers[1], await receivers[3]) == (message(1), message(2))
    assert queue.qsize() == 1
    assert await queue.get() == message(3)
    assert (queue._waiter, queue._more_waiters) == (None, None)


async def test_a_receiver_cancelled_while_waiting_takes_nothing() -> None:
    queue = ApplicationQueue()
    receiver = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    receiver.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiver
    queue.put_nowait(message(1))
    assert queue.qsize() == 1
    assert await queue.get() == message(1)


async def test_a_receiver_cancelled_after_it_was_handed_a_message_gives_it_back_first_in_line() -> None:
    queue = ApplicationQueue()
    receiver = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(message(1))  # handed to the waiting receiver...
    receiver.cancel()  # ...which is cancelled before it could run (e.g. the application is shutting down)
    with pytest.raises(asyncio.CancelledError):
        await receiver
    queue.put_nowait(message(2))
    assert [await queue.get(), await queue.get()] == [message(1), message(2)]


async def test_get_nowait_takes_what_is_waiting_in_order_and_says_when_nothing_is() -> None:
    queue = ApplicationQueue()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    for n in range(3):
        queue.put_nowait(message(n))
    assert [queue.get_nowait() for _ in range(2)] == [message(0), message(1)]
    assert await queue.get() == message(2)
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    assert queue._messages is None
