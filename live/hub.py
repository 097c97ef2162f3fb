"""Per-process fan-out of group messages to this process's sockets.

Sockets do not get channel-layer channels of their own. Instead each process subscribes one channel
to the groups its sockets belong to (a class's participants, a user's sockets); a group message then
costs one channel-layer message per process, and the process hands it to its local sockets in a plain
loop. With one channel per socket, a broadcast to 1,000 students meant 1,000 queue hand-offs, 1,000
consumer dispatches (each closing stale DB connections in a thread) and, with the in-memory layer, an
O(sockets) expiry sweep per delivery.

With the in-memory layer the hub serves one process; with channels-redis every process's hub
subscribes to the same groups, so a broadcast reaches participants connected to any process.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Protocol

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "hub.message"
# channels-redis forgets group memberships after a day (group_expiry); renew well before that.
GROUP_REFRESH_SECONDS = 3600


class Member(Protocol):
    member_id: str

    async def on_group_message(self, message: dict[str, Any]) -> None: ...


class Hub:
    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.members: dict[str, dict[str, Member]] = {}
        self.channel: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()

    async def join(self, group: str, member: Member) -> None:
        async with self._lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
                self._tasks = [
                    asyncio.create_task(self._listen(self.channel)),
                    asyncio.create_task(self._refresh(self.channel)),
                ]
            # Added on every join, not only the first: it also refreshes the membership's expiry in Redis.
            await self.layer.group_add(group, self.channel)
            self.members.setdefault(group, {})[member.member_id] = member

    async def leave(self, groups: list[str], member: Member) -> None:
        async with self._lock:
            for group in groups:
                local = self.members.get(group)
                if local is None:
                    continue
                local.pop(member.member_id, None)
                if not local:
                    del self.members[group]
                    if self.channel is not None:
                        await self.layer.group_discard(group, self.channel)
            if not self.members and self.channel is not None:
                # No local sockets left: stop listening, so nothing outlives its event loop.
                for task in self._tasks:
                    task.cancel()
                self._tasks, self.channel = [], None

    async def _refresh(self, channel: str) -> None:
        while True:
            await asyncio.sleep(GROUP_REFRESH_SECONDS)
            for group in list(self.members):
                await self.layer.group_add(group, channel)

    async def _listen(self, channel: str) -> None:
        while True:
            envelope = await self.layer.receive(channel)
            members = list(self.members.get(envelope.get("group", ""), {}).values())
            for member in members:
                try:
                    await member.on_group_message(envelope["body"])
                except Exception:  # one broken socket must not stop delivery to the others
                    logger.exception("Delivering a group message failed")


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def get_hub() -> Hub:
    """This event loop's hub (one per process in production; tests may run several loops)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub


async def publish(group: str, message: dict[str, Any]) -> None:
    """Send `message` to every member of `group`, in every process."""
    await get_channel_layer().group_send(group, {"type": MESSAGE_TYPE, "group": group, "body": message})
