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
    for name in ("collect", "freeze", "unfreeze", "disable", "enable"):
        monkeypatch.setattr(gc, name, lambda *args, name=name: calls.append(name))
    monkeypatch.setattr(gc, "isenabled", lambda: "disable" not in calls or calls[-1] == "enable")
    slots = SocketSlots()
    monkeypatch.setattr(upkeep, "open_sockets", slots)
    monkeypatch.setattr(upkeep, "FREEZE_QUIET_SECONDS", 0.5)  # far above the burst's gaps, even on a loaded machine
    monkeypatch.setattr(upkeep._Freezer, "timer", None)
    monkeypatch.setattr(upkeep._Freezer, "frozen_sockets", 0)
    monkeypatch.setattr(upkeep._Freezer, "paused_gc", False)
    monkeypatch.setattr(upkeep._Freezer, "enabled", True)
    return calls, slots


async def test_a_burst_pauses_the_collector_is_frozen_once_settled_and_unfrozen_once_half_closed(freezer):
    calls, slots = freezer
    loop = asyncio.get_running_loop()
    for i in range(10):  # a burst: each connect pushes the freeze back
        slots.acquire(f"u{i}", f"s{i}", limit=0)
        upkeep._note_connect(loop)
        await asyncio.sleep(0.01)
    assert calls == ["disable"]  # paused once, for the whole burst
    await asyncio.sleep(1.0)
    assert calls == ["disable", "collect", "freeze", "enable"]  # once, with one full pass first
    assert upkeep._Freezer.frozen_sockets == 10
    for i in range(5):
        slots.release(f"s{i}")
    upkeep._unfreeze_if_mostly_closed()
    assert calls == ["disable", "collect", "freeze", "enable"]  # half still open
    slots.release("s5")
    upkeep._unfreeze_if_mostly_closed()
    assert calls == ["disable", "collect", "freeze", "enable", "unfreeze"]
    assert upkeep._Freezer.frozen_sockets == 0


async def test_a_burst_that_goes_on_gets_the_collector_back_before_it_settles(freezer, monkeypatch):
    calls, slots = freezer
    monkeypatch.setattr(upkeep, "BURST_GC_PAUSE_SECONDS", 1.0)
    loop = asyncio.get_running_loop()
    for _ in range(30):  # connects every 0.05 s for 1.5 s: never quiet for 0.5 s
        upkeep._note_connect(loop)
        await asyncio.sleep(0.05)
    assert calls == ["disable", "enable"]  # paused at most ~1 s (+ one quiet period), collecting since
    await asyncio.sleep(1.0)
    assert calls == ["disable", "enable", "collect", "freeze"]  # frozen once settled, the collector left on


async def test_a_collector_disabled_by_someone_else_stays_disabled(freezer, monkeypatch):
    calls, _ = freezer
    monkeypatch.setattr(gc, "isenabled", lambda: False)
    upkeep._note_connect(asyncio.get_running_loop())
    await asyncio.sleep(0.8)
    assert calls == ["collect", "freeze"]


async def test_off_unless_the_server_turns_it_on(freezer):
    calls, _ = freezer
    upkeep.freeze_after_connects(False)
    upkeep._note_connect(asyncio.get_running_loop())
    await asyncio.sleep(0.6)
    assert calls == [] and upkeep._Freezer.timer is None
