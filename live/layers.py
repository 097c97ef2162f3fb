"""The channel layer of a single process (no REDIS_URL): Channels' in-memory layer, sweeping less often.

Channels' InMemoryChannelLayer sweeps every channel and every group for expired messages and memberships
on every send and every receive. The hub (live.hub) subscribes one group per connected user, so with
5,000 users each broadcast paid two sweeps of 5,000 groups — about an eighth of the server's CPU at
N = 5,000 (docs/benchmark.md). Expiry here is counted in seconds (messages: 60 s; memberships: a day), so
sweeping at most once a second changes nothing a client can see.
"""

from __future__ import annotations

import math
import time

from channels.layers import InMemoryChannelLayer as ChannelsInMemoryChannelLayer


class InMemoryChannelLayer(ChannelsInMemoryChannelLayer):
    SWEEP_INTERVAL_SECONDS = 1.0

    _swept_at = -math.inf

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept_at < self.SWEEP_INTERVAL_SECONDS:
            return
        self._swept_at = now
        super()._clean_expired()
