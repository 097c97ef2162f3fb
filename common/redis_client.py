"""Redis client options shared by the channel layer (settings) and the limits' cache."""

from __future__ import annotations

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff


def redis_retry() -> Retry:
    """Retry a command on a fresh connection after a connection error or timeout: three times, 50 ms apart
    doubling (a restarted Redis answers within that; one that stays down fails in about half a second).
    A client made from a URL retries nothing by default, so a restarted Redis or a dropped connection would
    fail the next command of every pooled connection."""
    return Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3)
