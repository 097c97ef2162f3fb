"""Brief synchronous reads on the event loop's own thread, where the database is embedded.

On SQLite (a local file: no network between a query and its rows, and readers never wait in WAL mode) a read of
a few rows costs less than the hop to a thread and back that Django and Channels make for it — a cross-thread
hand-off of the interpreter lock each way. The spec's own stack (Express with better-sqlite3's synchronous calls)
serves every request this way. Two users here: the HTTP operations declared `light` (server/http_handler.py)
and the socket reads a connecting class makes (live/db.py `loop_read`). Writes, and everything on PostgreSQL or
MongoDB, where a query waits on the network and an outage must not stop the loop, keep their threads.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS
from django.db.backends.sqlite3.creation import DatabaseCreation as SQLiteCreation
from django.dispatch import receiver

from server.gate import missing_attributes

# What serving on the event loop relies on: hiding the running loop from Django's async-safety check for the
# duration of one synchronous call (asyncio's own helpers, there since Python 3.7).
RELIES_ON_ASYNCIO = ("_get_running_loop", "_set_running_loop")


def sqlite(database: Mapping[str, Any]) -> bool:
    """Is this database (an entry of DATABASES) SQLite — Django's engine or one built on it?"""
    return str(database["ENGINE"]).endswith("sqlite3")


def in_memory_sqlite(database: Mapping[str, Any]) -> bool:
    """Is this database (an entry of DATABASES) an in-memory SQLite database (the in-process tests')?"""
    return sqlite(database) and SQLiteCreation.is_in_memory_db(database["NAME"])


def embedded_database() -> bool:
    """Is the default database SQLite (in this process, no network between the request and its rows)?"""
    # From the settings, not `connections`: under a running loop that makes a new connection wrapper per task.
    return sqlite(settings.DATABASES[DEFAULT_DB_ALIAS]) and not missing_attributes(asyncio, RELIES_ON_ASYNCIO)


@functools.cache
def socket_reads_on_loop() -> bool:
    """Do the sockets' brief reads run on the loop? On an embedded database kept in a file, on the fast path
    (LIVE_FAST_PATH). Not on an in-memory database (the in-process tests'): the loop's thread there is the test's
    own, whose connection may hold the test's open transaction. Worked out once, again after a change to either
    setting (tests make them)."""
    return (
        bool(settings.LIVE_FAST_PATH)
        and embedded_database()
        and not in_memory_sqlite(settings.DATABASES[DEFAULT_DB_ALIAS])
    )


@receiver(setting_changed)
def _settings_changed(setting: str, **_: Any) -> None:
    if setting in ("LIVE_FAST_PATH", "DATABASES"):
        socket_reads_on_loop.cache_clear()


class event_loop_hidden:  # noqa: N801 (used as the function it was: `with event_loop_hidden():`)
    """Run synchronous code on the event loop's thread as on any other: Django refuses database calls where it
    sees a running loop (SynchronousOnlyOperation), to stop a coroutine blocking it unknowingly. Here the block
    is the point, and brief: one light read. (A class, not a generator-based context manager: entered at every
    light request and socket read, where the generator's frame was ~1 % of a request.)"""

    __slots__ = ("loop",)

    def __enter__(self) -> None:
        self.loop = asyncio._get_running_loop()
        asyncio._set_running_loop(None)

    def __exit__(self, *exc_info: object) -> None:
        asyncio._set_running_loop(self.loop)
