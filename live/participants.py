"""Who a connecting socket is: its user and classes, looked up for a burst of connects at once.

A class starting means hundreds of sockets connecting within a second. Looked up one by one, each connect cost
two ORM queries (most of it Django building the SQL, not the database) and a hop to the database thread of its
own; the lookups of every socket that connects while one is in flight are instead queued and run together, three
queries per batch (`selectors.connect_participants`). A socket that connects alone is looked up at once, as
before. On an SQLite file the batch runs on the event loop itself (live.db.loop_read): nothing is in flight
then, and a batch holds the sockets that connected during the same turn of the loop; the loop gets a turn
between batches.
"""

from __future__ import annotations

import asyncio
from typing import Any

from common.loops import PerLoop
from live import selectors
from live.db import loop_read

# Bounds a batch's `IN (...)` lists (SQLite's default limit on query parameters is 32,766).
MAX_BATCH = 500


class ParticipantLookup:
    def __init__(self) -> None:
        self.queued: list[tuple[dict[str, Any], asyncio.Future[selectors.Participant | None]]] = []
        self.task: asyncio.Task[None] | None = None

    async def lookup(self, claims: dict[str, Any]) -> selectors.Participant | None:
        """The user verified `claims` name and their classes, or None if the user is gone. Read after this is
        called (the consumer's ordering: its user group is joined first)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[selectors.Participant | None] = loop.create_future()
        self.queued.append((claims, future))
        if self.task is None:
            self.task = loop.create_task(self._drain(), name="live-participant-lookup")
        return await future

    async def _drain(self) -> None:
        try:
            while self.queued:
                batch, self.queued = self.queued[:MAX_BATCH], self.queued[MAX_BATCH:]
                try:
                    found = await loop_read(selectors.connect_participants)([claims for claims, _ in batch])
                except Exception as error:  # each waiting connect fails as its own lookup would have
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), participant in zip(batch, found, strict=True):
                    if not future.done():  # not cancelled (the socket went away while waiting)
                        future.set_result(participant)
                # Read on the loop, a batch did not let it turn: other sockets' events go before the next one.
                await asyncio.sleep(0)
        finally:
            self.task = None


_lookups: PerLoop[ParticipantLookup] = PerLoop(ParticipantLookup)


async def lookup_participant(claims: dict[str, Any]) -> selectors.Participant | None:
    """This event loop's batched lookup (see the module's docstring)."""
    return await _lookups.get().lookup(claims)
