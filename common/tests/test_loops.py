"""One value per running event loop (common/loops.py)."""

import asyncio
import threading

import pytest

from common.loops import PerLoop


async def test_each_loop_gets_its_own_value_made_once():
    made = []
    values = PerLoop(lambda: made.append(1) or object())
    mine = values.get()
    assert values.get() is mine and len(made) == 1

    other = []
    thread = threading.Thread(target=lambda: other.append(asyncio.run(_get(values))))
    thread.start()
    thread.join()
    assert other[0] is not mine and len(made) == 2
    assert values.get() is mine


async def _get(values):
    return values.get()


async def test_peek_set_and_pop():
    values: PerLoop[str] = PerLoop()
    assert values.peek() is None
    with pytest.raises(LookupError):
        values.get()
    values.set("a")
    assert (values.peek(), values.get()) == ("a", "a")
    values.set("b")  # the value `get` last returned is not returned again after a set
    assert values.get() == "b"
    assert values.pop() == "b"
    assert (values.peek(), values.pop()) == (None, None)
    with pytest.raises(LookupError):
        values.get()  # nor after a pop


def test_values_of_closed_loops_are_dropped_when_a_new_one_is_made():
    held = []  # a value that refers to its loop (a task, a client) would keep the loop alive: so do we
    values = PerLoop(lambda: held.append(asyncio.get_running_loop()) or len(held))
    for _ in range(5):
        assert asyncio.run(_get(values)) == len(held)
    assert len(values) == 1  # only the last loop's, though all five loops are still referenced


def test_outside_a_running_loop_is_an_error():
    with pytest.raises(RuntimeError):
        PerLoop(object).get()
