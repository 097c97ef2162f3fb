"""Database calls from the WebSocket consumer.

Socket events run their database work on asgiref's one thread-sensitive worker thread. That thread
keeps its connection from one event to the next, instead of opening and closing one per event as
Channels' database_sync_to_async does with CONN_MAX_AGE=0 (the right setting for HTTP under ASGI,
where requests get threads of their own and persistent connections would pile up). A connection
that has failed, or that went unused for a while and no longer answers, is replaced.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import DatabaseError, connections

P = ParamSpec("P")
R = TypeVar("R")

# An idle connection is checked (one round trip) before it is used again.
IDLE_CHECK_SECONDS = 30.0
_last_used = 0.0


def _drop_unusable_connections() -> None:
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection.is_usable():
            connection.close()


def _run(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    global _last_used
    if time.monotonic() - _last_used > IDLE_CHECK_SECONDS:
        _drop_unusable_connections()
    try:
        return fn(*args, **kwargs)
    except DatabaseError:
        _drop_unusable_connections()
        raise
    finally:
        _last_used = time.monotonic()


def db_call(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`fn` as a coroutine function, run on the database thread with its kept connection."""

    @wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        return await sync_to_async(_run, thread_sensitive=True)(fn, *args, **kwargs)

    return call


async def close_db_connections() -> None:
    """Close the database thread's kept connections (test teardown, before the test database is dropped)."""
    await sync_to_async(connections.close_all, thread_sensitive=True)()
