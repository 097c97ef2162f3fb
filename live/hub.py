"""Per-process fan-out of group messages to this process's sockets.

Sockets do not get channel-layer channels of their own. Instead each process subscribes one channel
to the groups its sockets belong to (a class's participants, a user's sockets); a group message then
costs one channel-layer message per process, and the process hands it to its local sockets in a plain
loop. With one channel per socket, a broadcast to 1,000 students meant 1,000 queue hand-offs, 1,000
consumer dispatches and, with the in-memory layer, an O(sockets) expiry sweep per delivery.

With the in-memory layer the hub serves one process; with channels-redis every process's hub
subscribes to the same groups, so a broadcast reaches participants connected to any process.

The hub never stops for good (docs/production.md): one supervised task receives from the layer; when
receiving fails (Redis restarted, a connection dropped or killed) it waits a moment, subscribes every
group again — a restarted Redis has forgotten them — and goes on, with a growing but short back-off.
Local membership changes are plain dict updates (safe even from a consumer being cancelled); the layer's
subscriptions follow them under one lock, so an add and a discard of one group never cross.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any, Protocol

from channels.layers import BaseChannelLayer, get_channel_layer

from common.loops import PerLoop
from server.fanout import NativeFanOut, send_text_now

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "hub.message"
# channels-redis forgets group memberships after a day (group_expiry); renew well before that.
GROUP_REFRESH_SECONDS = 3600.0
# Back-off between attempts after the layer failed: short, so that broadcasts resume within seconds.
RETRY_FIRST_SECONDS = 0.05
RETRY_MAX_SECONDS = 1.0
# The end-to-end probe: at most PROBE_INTERVAL + PROBE_TIMEOUT (+ one re-subscription) without broadcasts
# after the layer silently lost our subscriptions — within the 5 s docs/production.md promises.
PROBE_INTERVAL_SECONDS = 2.0
PROBE_TIMEOUT_SECONDS = 1.5


class Member(Protocol):
    member_id: str
    # The socket a broadcast can be written to now, outside ASGI (server.daphne_ext.DirectSocket), or None:
    # read by the native fan-out (server/fanout.py), which hands members without one to deliver_now.
    direct_ready: Any

    def deliver_now(self, message: dict[str, Any], shared: dict[str, Any]) -> bool:
        """Take `message` synchronously if it can (True), else it goes to on_group_message. `shared` is
        one dict per message for all local members, for work they can share (e.g. a frame built once)."""
        ...

    async def on_group_message(self, message: dict[str, Any]) -> None: ...


class Hub:
    def __init__(self, layer: BaseChannelLayer | None = None) -> None:
        self.layer: Any = layer or get_channel_layer()
        self.members: dict[str, dict[str, Member]] = {}
        self.channel: str | None = None
        self.subscribed: set[str] = set()  # groups the layer delivers to `channel`
        self._lock = asyncio.Lock()  # held for every subscription change at the layer
        self._task: asyncio.Task[None] | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._probe_group = f"hub-probe.{uuid.uuid4().hex}"
        self._probe_seen = asyncio.Event()
        self.failures = 0  # times the layer failed and the hub recovered (tests, logs)
        self._background: set[asyncio.Task[Any]] = set()

    # --- membership -----------------------------------------------------------------------------

    async def join(self, group: str, member: Member) -> None:
        """Add `member` to `group`; returns once the layer delivers the group's messages here, so a
        message sent after this returns reaches the member. If the layer is down, the member is kept
        and the group is subscribed as soon as the layer is back."""
        self.members.setdefault(group, {})[member.member_id] = member
        self._ensure_running()
        try:
            await self._sync(group)
        except Exception:
            # Kept as a member: the probe finds the group missing and subscribes it once the layer is back.
            logger.warning("Subscribing to %s failed; retried when the channel layer is back", group, exc_info=True)

    def leave(self, groups: list[str], member: Member) -> None:
        """Remove `member` from `groups`. Synchronous, so that it completes on every exit path, a cancelled
        consumer included; unsubscribing emptied groups from the layer happens in the background."""
        emptied = []
        for group in groups:
            local = self.members.get(group)
            if local is None or local.pop(member.member_id, None) is None:
                continue
            if not local:
                del self.members[group]
                emptied.append(group)
        if emptied:
            self._spawn(self._unsubscribe(emptied))

    def local_members(self, group: str) -> list[Member]:
        return list(self.members.get(group, {}).values())

    # --- the layer ------------------------------------------------------------------------------

    async def _sync(self, group: str) -> None:
        """Make the layer's subscription of `group` match whether it has local members."""
        async with self._lock:
            channel = await self._channel()
            wanted = group in self.members
            if wanted and group not in self.subscribed:
                await self.layer.group_add(group, channel)
                self.subscribed.add(group)
            elif not wanted and group in self.subscribed:
                self.subscribed.discard(group)
                await self.layer.group_discard(group, channel)

    async def _unsubscribe(self, groups: list[str]) -> None:
        for group in groups:
            try:
                await self._sync(group)
            except Exception:
                # A stale subscription only costs an ignored message; channels-redis expires it.
                logger.warning("Unsubscribing from %s failed", group, exc_info=True)
        if not self.members:
            self._stop_if_idle()

    async def _channel(self) -> str:
        if self.channel is None:
            self.channel = await self.layer.new_channel()
            await self.layer.group_add(self._probe_group, self.channel)
        return self.channel

    async def _resubscribe_all(self) -> None:
        """Subscribe every group with local members again (after a failure, and to renew expiries)."""
        async with self._lock:
            channel = await self._channel()
            for group in [self._probe_group, *self.members]:
                await self.layer.group_add(group, channel)
            self.subscribed = set(self.members)

    # --- the supervised receiver and its probe ------------------------------------------------------

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._receive_forever(), name="live-hub-receive")
            self._probe_task = loop.create_task(self._probe_forever(), name="live-hub-probe")

    def _stop_if_idle(self) -> None:
        """No local sockets left: stop receiving, so that nothing outlives its event loop (tests run many)."""
        if not self.members and self._task is not None:
            for task in (self._task, self._probe_task):
                if task is not None:
                    task.cancel()
            self._task = self._probe_task = None
            if self.channel is not None:
                self._spawn(self._forget_channel(self.channel))
            self.channel = None
            self.subscribed.clear()

    async def _forget_channel(self, channel: str) -> None:
        with contextlib.suppress(Exception):
            await self.layer.group_discard(self._probe_group, channel)

    async def _receive_forever(self) -> None:
        async with self._lock:
            channel = await self._channel()
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                envelope = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                logger.warning("Receiving from the channel layer failed; again in %.2f s", delay, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                # The failure may have been a restarted Redis, which forgets every group.
                await self._resubscribe_quietly()
                continue
            delay = RETRY_FIRST_SECONDS
            if envelope.get("group") == self._probe_group:
                self._probe_seen.set()
                continue
            await self._deliver(envelope)

    async def _probe_forever(self) -> None:
        """Check the whole path end to end: a message to a group only this hub belongs to must come back.
        If it does not (the layer lost our subscriptions: a restarted Redis, or commands retried by the
        client on a fresh connection without an error reaching us), subscribe everything again."""
        refreshed = time.monotonic()
        while True:
            await asyncio.sleep(PROBE_INTERVAL_SECONDS)
            self._probe_seen.clear()
            try:
                await self.layer.group_send(self._probe_group, {"type": MESSAGE_TYPE, "group": self._probe_group})
                await asyncio.wait_for(self._probe_seen.wait(), PROBE_TIMEOUT_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                logger.warning("Channel layer probe failed; subscribing every group again", exc_info=True)
                await self._resubscribe_quietly()
                continue
            # Groups whose subscription failed while the layer was down; and the periodic renewal.
            if self.members.keys() - self.subscribed or time.monotonic() - refreshed > GROUP_REFRESH_SECONDS:
                await self._resubscribe_quietly()
                refreshed = time.monotonic()

    async def _resubscribe_quietly(self) -> None:
        try:
            await self._resubscribe_all()
        except Exception:
            logger.warning("Subscribing again failed; retrying", exc_info=True)

    async def _deliver(self, envelope: dict[str, Any]) -> None:
        """Hand a group message to each local member: a plain loop of synchronous writes where members take
        it now (a broadcast under our Daphne), a coroutine per member only where they cannot."""
        body = envelope["body"]
        members = self.local_members(envelope.get("group", ""))
        if NativeFanOut.on and body.get("kind") == "broadcast" and members:
            # One native call writes the frame to every member whose socket takes it now (server/fanout.py);
            # the rest (not yet accepted, closing, anything buffered) take their usual path below.
            try:
                members = send_text_now(members, body["skip"], body["text"])
            except Exception:  # not retried member by member: some may have been sent the frame already
                logger.exception("Writing a broadcast to this process's sockets failed")
                return
        shared: dict[str, Any] = {}
        for member in members:
            try:
                if not member.deliver_now(body, shared):
                    await member.on_group_message(body)
            except Exception:  # one broken socket must not stop delivery to the others
                logger.exception("Delivering a group message failed")

    # --- background work ---------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        """Run `coroutine` in the background, keeping a reference until it ends (asyncio holds weak ones)."""
        try:
            task = asyncio.get_running_loop().create_task(coroutine)
        except RuntimeError:  # no running loop (interpreter or test loop shutting down): nothing to tidy
            coroutine.close()
            return
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def aclose(self) -> None:
        """Stop receiving (tests)."""
        for task in (self._task, self._probe_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._probe_task = None


_hubs: PerLoop[Hub] = PerLoop(Hub)


def get_hub() -> Hub:
    """This event loop's hub (one per process in production; tests may run several loops)."""
    return _hubs.get()


async def publish(group: str, message: dict[str, Any]) -> None:
    """Send `message` to every member of `group`, in every process."""
    await get_channel_layer().group_send(group, {"type": MESSAGE_TYPE, "group": group, "body": message})
