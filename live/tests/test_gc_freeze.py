"""live.upkeep's garbage-collection freeze after bursts of connects (on in the production server only)."""

from __future__ import annotations

import asyncio
import gc

import pytest

from common.limits import SocketSlots
from live import upkeep


@pytest.fixture
def freezer(monkeypatch):
    calls: list[str] = []
    for name in ("collect", "freeze", "unfreeze"):
        monkeypatch.setattr(gc, name, lambda *args, name=name: calls.append(name))
    thresholds = [(700, 10, 10)]

    def set_threshold(*values: int) -> None:
        calls.append("defer" if values[2] == upkeep.NO_FULL_PASS else f"restore {values}")
        thresholds[0] = values

    monkeypatch.setattr(gc, "get_threshold", lambda: thresholds[0])
    monkeypatch.setattr(gc, "set_threshold", set_threshold)
    slots = SocketSlots()
    monkeypatch.setattr(upkeep, "open_sockets", slots)
    monkeypatch.setattr(upkeep, "FREEZE_QUIET_SECONDS", 0.5)  # far above the burst's gaps, even on a loaded machine
    monkeypatch.setattr(upkeep._Freezer, "timer", None)
    monkeypatch.setattr(upkeep._Freezer, "frozen_sockets", 0)
    monkeypatch.setattr(upkeep._Freezer, "saved_oldest", None)
    monkeypatch.setattr(upkeep._Freezer, "enabled", True)
    return calls, slots


async def test_a_burst_defers_full_passes_is_frozen_once_settled_and_unfrozen_once_half_closed(freezer):
    calls, slots = freezer
    loop = asyncio.get_running_loop()
    for i in range(10):  # a burst: each connect pushes the freeze back
        slots.acquire(f"u{i}", f"s{i}", limit=0)
        upkeep._note_connect(loop)
        await asyncio.sleep(0.01)
    assert calls == ["defer"]  # once, for the whole burst: the young generations are still collected
    await asyncio.sleep(1.0)
    assert calls == ["defer", "collect", "freeze", "restore (700, 10, 10)"]  # once, with one full pass first
    assert upkeep._Freezer.frozen_sockets == 10
    for i in range(5):
        slots.release(f"s{i}")
    upkeep._unfreeze_if_mostly_closed()
    assert calls == ["defer", "collect", "freeze", "restore (700, 10, 10)"]  # half still open
    slots.release("s5")
    upkeep._unfreeze_if_mostly_closed()
    assert calls == ["defer", "collect", "freeze", "restore (700, 10, 10)", "unfreeze"]
    assert upkeep._Freezer.frozen_sockets == 0


async def test_a_burst_that_goes_on_gets_its_full_passes_back_before_it_settles(freezer, monkeypatch):
    calls, slots = freezer
    monkeypatch.setattr(upkeep, "BURST_GC_PAUSE_SECONDS", 1.0)
    loop = asyncio.get_running_loop()
    for _ in range(30):  # connects every 0.05 s for 1.5 s: never quiet for 0.5 s
        upkeep._note_connect(loop)
        await asyncio.sleep(0.05)
    assert calls == ["defer", "restore (700, 10, 10)"]  # deferred ~1 s (+ one quiet period) at most
    await asyncio.sleep(1.0)
    assert calls == ["defer", "restore (700, 10, 10)", "collect", "freeze"]  # frozen once settled


async def test_thresholds_someone_else_set_meanwhile_are_left_as_they_are(freezer):
    calls, _ = freezer
    upkeep._note_connect(asyncio.get_running_loop())
    gc.set_threshold(1000, 20, 20)  # e.g. an operator's tuning, while the burst's full passes were deferred
    await asyncio.sleep(0.8)
    assert calls == ["defer", "restore (1000, 20, 20)", "collect", "freeze"]
    assert gc.get_threshold() == (1000, 20, 20)


async def test_young_thresholds_set_meanwhile_are_kept_and_the_oldest_restored(freezer):
    calls, _ = freezer
    upkeep._note_connect(asyncio.get_running_loop())
    gc.set_threshold(800, 10, upkeep.NO_FULL_PASS)  # gc.set_threshold(800) during the burst
    await asyncio.sleep(0.8)
    assert gc.get_threshold() == (800, 10, 10)


async def test_off_unless_the_server_turns_it_on(freezer):
    calls, _ = freezer
    upkeep.freeze_after_connects(False)
    upkeep._note_connect(asyncio.get_running_loop())
    await asyncio.sleep(0.6)
    assert calls == [] and upkeep._Freezer.timer is None
