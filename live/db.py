"""Database calls from the WebSocket consumer.

Socket events run their database work on asgiref's one thread-sensitive worker thread. That thread
keeps its connection from one event to the next, instead of opening and closing one per event as
Channels' database_sync_to_async does with CONN_MAX_AGE=0 (the right setting for HTTP under ASGI,
where requests get threads of their own and persistent connections would pile up). A connection
that has failed, or that went unused for a while and no longer answers, is replaced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from functools import wraps
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger(__name__)

_last_used = 0.0


def connection_usable(connection: BaseDatabaseWrapper) -> bool:
    """One round trip to the server: does this open connection still answer?

    SQL backends have `is_usable()`. django-mongodb-backend does not implement it (NotImplementedError): its
    "connection" is pymongo's MongoClient, a pool shared by every thread, which `close()` deliberately leaves
    open. A `ping` on it does the same job there: a dead pooled socket fails it, pymongo discards that pool's
    sockets, and the next query opens a fresh one. Any error while checking counts as "not usable"."""
    try:
        if connection.vendor == "mongodb":
            connection.connection.admin.command("ping")
            return True
        return bool(connection.is_usable())
    except Exception:
        logger.warning("database connection %r failed its check; replacing it", connection.alias, exc_info=True)
        return False


def _drop_unusable_connections() -> None:
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection_usable(connection):
            # The next query opens a new connection (on MongoDB: close() keeps the pool, which already
            # dropped its dead sockets).
            with suppress(Exception):
                connection.close()


def _run(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    global _last_used
    try:
        # An idle connection is checked (one round trip) before it is used again; the period is a setting
        # (DB_IDLE_CHECK_SECONDS) so that tests can go idle for longer than it in seconds.
        if time.monotonic() - _last_used > settings.DB_IDLE_CHECK_SECONDS:
            _drop_unusable_connections()
        try:
            return fn(*args, **kwargs)
        except DatabaseError:
            _drop_unusable_connections()
            raise
    finally:
        # Whatever happened, even a check that raised: the next event runs its query rather than failing
        # in the check again.
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
