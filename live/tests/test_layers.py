"""The single-process channel layer (live.layers): Channels' expiry, swept at most once a second."""

from __future__ import annotations

import time
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer as ChannelsInMemoryChannelLayer

from live import layers
from live.layers import InMemoryChannelLayer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(layers.time, "monotonic", clock.monotonic)
    return clock


def count_sweeps(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Channels' own sweep, counted."""
    sweeps: list[Any] = []
    original = ChannelsInMemoryChannelLayer._clean_expired

    def sweep(self: Any) -> None:
        sweeps.append(True)
        original(self)

    monkeypatch.setattr(ChannelsInMemoryChannelLayer, "_clean_expired", sweep)
    return sweeps


async def test_sends_and_receives_sweep_at_most_once_a_second(clock, monkeypatch):
    layer = InMemoryChannelLayer()
    sweeps = count_sweeps(monkeypatch)
    channel = await layer.new_channel()
    await layer.group_add("class.1", channel)
    for n in range(50):
        await layer.group_send("class.1", {"type": "hub.message", "n": n})
        assert (await layer.receive(channel))["n"] == n
    assert len(sweeps) == 1
    clock.now += 1.0
    await layer.group_send("class.1", {"type": "hub.message", "n": 50})
    assert len(sweeps) == 2


async def test_expired_memberships_and_messages_are_still_removed(clock, monkeypatch):
    layer = InMemoryChannelLayer(expiry=60, group_expiry=100)
    stale, fresh = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("class.1", stale)
    layer.groups["class.1"][stale] = time.time() - 101  # joined longer ago than group_expiry
    await layer.send(fresh, {"type": "hub.message"})
    layer.channels[fresh]._queue[0] = (time.time() - 1, {"type": "hub.message"})  # type: ignore[attr-defined]
    clock.now += 1.0
    await layer.group_add("class.2", fresh)  # not a sweep: the next send is
    await layer.group_send("class.3", {"type": "hub.message"})
    assert stale not in layer.groups.get("class.1", {})
    assert fresh not in layer.channels  # its only message had expired
