"""The per-process hub (live/hub.py) on its own: membership, delivery, and recovery from a failing layer.

The layer is Channels' in-memory one, with faults injected: receives that raise (a dropped or killed Redis
connection), group operations that raise (Redis down), and groups forgotten (a restarted Redis).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer

from live import hub as hub_module
from live.hub import MESSAGE_TYPE, Hub
from server import fanout, gate
from server.daphne_ext import DirectSocket
from server.tests.links import Link, loopback_link, open_protocol


class FlakyLayer(InMemoryChannelLayer):
    def __init__(self) -> None:
        super().__init__(capacity=1000)
        self.failing_receives = 0
        self.failing_group_ops = 0
        self.group_adds: list[str] = []
        self.group_discards: list[str] = []

    async def receive(self, channel: str) -> dict[str, Any]:
        if self.failing_receives:
            self.failing_receives -= 1
            await asyncio.sleep(0.01)
            raise ConnectionError("connection reset by peer")
        return await super().receive(channel)

    async def group_add(self, group: str, channel: str) -> None:
        if self.failing_group_ops:
            self.failing_group_ops -= 1
            raise ConnectionError("redis is down")
        self.group_adds.append(group)
        await super().group_add(group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        self.group_discards.append(group)
        await super().group_discard(group, channel)

    def forget_groups(self) -> None:
        """What a Redis restart without persistence does to channels-redis' groups."""
        self.groups.clear()


class Member:
    def __init__(self, name: str, broken: bool = False, takes_now: bool = False) -> None:
        self.member_id = name
        self.received: list[dict[str, Any]] = []
        self.broken = broken
        self.takes_now = takes_now
        self.shared: list[dict[str, Any]] = []  # the `shared` dict of each message taken now

    def deliver_now(self, message: dict[str, Any], shared: dict[str, Any]) -> bool:
        if not self.takes_now:
            return False
        if self.broken:
            raise RuntimeError("socket is gone")
        shared.setdefault("taken by", []).append(self.member_id)
        self.shared.append(shared)
        self.received.append(message)
        return True

    async def on_group_message(self, message: dict[str, Any]) -> None:
        if self.broken:
            raise RuntimeError("socket is gone")
        self.received.append(message)


@pytest.fixture
def fast_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "PROBE_INTERVAL_SECONDS", 0.1)
    monkeypatch.setattr(hub_module, "PROBE_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(hub_module, "RETRY_MAX_SECONDS", 0.1)


@pytest.fixture
async def layer_and_hub() -> Any:
    layer = FlakyLayer()
    hub = Hub(layer)
    yield layer, hub
    await hub.aclose()


async def send(layer: FlakyLayer, group: str, n: int) -> None:
    await layer.group_send(group, {"type": MESSAGE_TYPE, "group": group, "body": {"n": n}})


async def eventually(check: Any, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_message_sent_after_join_returns_reaches_the_member(layer_and_hub):
    layer, hub = layer_and_hub
    member = Member("a")
    await hub.join("class.1", member)
    await send(layer, "class.1", 1)  # no waiting in between: join already subscribed the group
    await eventually(lambda: member.received == [{"n": 1}])


async def test_members_get_only_their_groups_messages(layer_and_hub):
    layer, hub = layer_and_hub
    a, b = Member("a"), Member("b")
    await hub.join("class.1", a)
    await hub.join("class.2", b)
    await hub.join("class.2", a)
    await send(layer, "class.2", 2)
    await send(layer, "class.1", 1)
    await eventually(lambda: len(a.received) == 2 and len(b.received) == 1)
    assert a.received == [{"n": 2}, {"n": 1}] and b.received == [{"n": 2}]


async def test_leave_is_immediate_and_unsubscribes_an_emptied_group(layer_and_hub):
    layer, hub = layer_and_hub
    a, b = Member("a"), Member("b")
    await hub.join("class.1", a)
    await hub.join("class.1", b)
    hub.leave(["class.1"], a)  # synchronous: done before any await
    assert hub.local_members("class.1") == [b]
    hub.leave(["class.1", "class.9"], a)  # again, and a group it never joined: no-op
    hub.leave(["class.1"], b)
    assert hub.members == {}
    await eventually(lambda: "class.1" in layer.group_discards)
    assert "class.1" not in layer.groups
    await send(layer, "class.1", 1)
    await asyncio.sleep(0.05)
    assert a.received == b.received == []


async def test_the_hub_stops_receiving_when_its_last_member_leaves(layer_and_hub):
    layer, hub = layer_and_hub
    a = Member("a")
    await hub.join("class.1", a)
    task = hub._task
    assert task is not None and not task.done()
    hub.leave(["class.1"], a)
    await eventually(lambda: task.done())
    assert hub.channel is None
    # And starts again for the next member.
    await hub.join("class.1", a)
    await send(layer, "class.1", 1)
    await eventually(lambda: a.received == [{"n": 1}])


async def test_a_broken_member_does_not_stop_delivery_to_the_others(layer_and_hub):
    layer, hub = layer_and_hub
    broken, fine = Member("broken", broken=True), Member("fine")
    await hub.join("class.1", broken)
    await hub.join("class.1", fine)
    await send(layer, "class.1", 1)
    await send(layer, "class.1", 2)
    await eventually(lambda: fine.received == [{"n": 1}, {"n": 2}])


@pytest.mark.parametrize("broken_takes_now", [False, True])
async def test_members_that_take_a_message_now_share_one_dict_and_the_others_get_it_as_before(
    layer_and_hub, broken_takes_now
):
    layer, hub = layer_and_hub
    now_a, later, now_b = Member("now-a", takes_now=True), Member("later"), Member("now-b", takes_now=True)
    broken = Member("broken", broken=True, takes_now=broken_takes_now)
    for member in (now_a, broken, later, now_b):
        await hub.join("class.1", member)
    await send(layer, "class.1", 1)
    await send(layer, "class.1", 2)
    await eventually(lambda: len(later.received) == 2 and len(now_b.received) == 2)
    assert now_a.received == later.received == now_b.received == [{"n": 1}, {"n": 2}]
    # One dict per message, the same for every member that took it now (work they share, e.g. a frame).
    first, second = now_a.shared
    assert first is now_b.shared[0] and second is now_b.shared[1] and first is not second
    assert first["taken by"] == ["now-a", "now-b"]


async def test_receiving_recovers_after_failures_and_subscribes_again(layer_and_hub, fast_probe):
    layer, hub = layer_and_hub
    member = Member("a")
    await hub.join("class.1", member)
    layer.failing_receives = 5
    layer.forget_groups()  # the failure was a restarted Redis
    await eventually(lambda: hub.failures >= 5)
    await eventually(lambda: "class.1" in layer.groups)
    await send(layer, "class.1", 1)
    await eventually(lambda: member.received == [{"n": 1}])


async def test_the_probe_notices_forgotten_groups_without_any_error(layer_and_hub, fast_probe):
    """A restarted Redis that the client reconnected to transparently: no exception, just no messages."""
    layer, hub = layer_and_hub
    member = Member("a")
    await hub.join("class.1", member)
    layer.forget_groups()
    await eventually(lambda: "class.1" in layer.groups, timeout=2)
    await send(layer, "class.1", 1)
    await eventually(lambda: member.received == [{"n": 1}])


async def test_a_join_while_the_layer_is_down_is_subscribed_once_it_is_back(layer_and_hub, fast_probe):
    layer, hub = layer_and_hub
    early = Member("early")
    await hub.join("class.0", early)  # the hub runs, the layer works
    layer.failing_group_ops = 1
    member = Member("a")
    await hub.join("class.1", member)  # does not raise: the member is kept
    assert hub.local_members("class.1") == [member]
    await eventually(lambda: "class.1" in layer.groups, timeout=2)
    await send(layer, "class.1", 1)
    await eventually(lambda: member.received == [{"n": 1}])


async def test_racing_joins_and_leaves_end_with_the_layer_matching_the_members(layer_and_hub):
    layer, hub = layer_and_hub
    members = [Member(f"m{i}") for i in range(20)]

    async def churn(member: Member) -> None:
        for _ in range(5):
            await hub.join("class.1", member)
            hub.leave(["class.1"], member)
            await asyncio.sleep(0)

    keeper = Member("keeper")
    await asyncio.gather(*(churn(m) for m in members), hub.join("class.1", keeper))
    await asyncio.sleep(0.05)
    assert hub.local_members("class.1") == [keeper]
    await send(layer, "class.1", 1)
    await eventually(lambda: keeper.received == [{"n": 1}])
    assert all(m.received == [] for m in members)


# --- broadcasts through the native fan-out (server/fanout.py) -------------------------------------------------------
class SocketMember(Member):
    """A member whose socket takes broadcasts now: a real loopback TCP link under our protocol."""

    def __init__(self, name: str, link: Link) -> None:
        super().__init__(name)
        self.direct_ready = DirectSocket(open_protocol(link))


def broadcast(text: str, skip: str | None = None) -> dict[str, Any]:
    return {"kind": "broadcast", "text": text, "skip": skip}


@pytest.fixture
def native_fan_out() -> Any:
    if fanout._fanout is None:
        pytest.skip("server._fanout is not built (server.build_native)")
    gate.reset()
    assert "native fan-out" in gate.install(fast_path=True)
    yield
    gate.reset()


async def test_a_broadcast_is_written_natively_where_it_can_and_the_rest_take_their_usual_path(
    layer_and_hub, native_fan_out
):
    layer, hub = layer_and_hub
    with loopback_link() as first, loopback_link() as second:
        writer, sender, plain = SocketMember("w", first), SocketMember("s", second), Member("p")  # plain: not ready
        for member in (writer, sender, plain):
            await hub.join("class.1", member)
        text = '{"event":"ATTENDANCE_MARKED","data":{}}'
        await layer.group_send("class.1", {"type": MESSAGE_TYPE, "group": "class.1", "body": broadcast(text, "s")})
        await eventually(lambda: plain.received == [broadcast(text, "s")])  # on_group_message, as before
        assert first.read_all() == DirectSocket.prepare(text).payloadHybi  # written by the native call
        assert second.read_all() == b""  # the sender's own socket: skipped
        assert writer.received == []  # not through the member's Python path


async def test_a_fan_out_that_fails_is_logged_and_the_hub_goes_on(layer_and_hub, native_fan_out, monkeypatch, caplog):
    layer, hub = layer_and_hub
    member = Member("p")
    await hub.join("class.1", member)

    def failing(members: list[Any], skip: str | None, text: str) -> list[Any]:
        raise MemoryError("out of memory")

    monkeypatch.setattr(hub_module, "send_text_now", failing)
    await layer.group_send("class.1", {"type": MESSAGE_TYPE, "group": "class.1", "body": broadcast("lost")})
    await eventually(lambda: "Writing a broadcast to this process's sockets failed" in caplog.text)
    monkeypatch.undo()
    await layer.group_send("class.1", {"type": MESSAGE_TYPE, "group": "class.1", "body": broadcast("next")})
    await eventually(lambda: member.received == [broadcast("next")])
