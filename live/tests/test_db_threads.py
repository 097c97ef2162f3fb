"""live.db's pool of database threads: a call that blocks holds one thread, the others go on; calls one after the
other keep to one thread (and its connection); each thread's connection is closed by close_db_connections; after
a database error every thread checks its connection before its next use. Over the wire (a DONE waiting on a
database lock beside other sockets' events): test_wire_db_threads.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest
from django.db import DatabaseError, connections

from accounts.models import User
from live import db
from live.db import close_db_connections, db_call

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 3


@pytest.fixture
async def pool(monkeypatch) -> AsyncIterator[None]:
    """A fresh pool of THREADS threads (the in-memory test database gets one thread otherwise)."""
    await close_db_connections()
    monkeypatch.setattr(db, "pool_size", lambda: THREADS)
    yield
    await close_db_connections()


def wait_for(event: threading.Event) -> str:
    assert event.wait(10)
    return threading.current_thread().name


def thread_name() -> str:
    return threading.current_thread().name


async def test_a_blocked_call_does_not_stall_the_others(pool):
    release = threading.Event()
    blocked = asyncio.ensure_future(db_call(wait_for)(release))
    await asyncio.sleep(0.05)
    others = await asyncio.wait_for(asyncio.gather(*(db_call(thread_name)() for _ in range(5))), 2)
    assert not blocked.done()
    release.set()
    assert (await blocked) not in others


async def test_at_most_the_pool_size_of_threads_run_at_once(pool):
    release = threading.Event()
    calls = [asyncio.ensure_future(db_call(wait_for)(release)) for _ in range(THREADS + 2)]
    await asyncio.sleep(0.1)
    assert len(db.database_threads().threads) == THREADS
    release.set()
    names = await asyncio.gather(*calls)
    assert len(set(names)) == THREADS


async def test_calls_one_after_the_other_keep_to_one_thread(pool):
    names = {await db_call(thread_name)() for _ in range(20)}
    assert len(names) == 1 and len(db.database_threads().threads) == 1


async def test_close_db_connections_closes_every_threads_connections(pool, monkeypatch):
    barrier = threading.Barrier(THREADS, timeout=5)

    def open_connection():
        User.objects.count()
        barrier.wait()  # every call on a thread of its own
        return thread_name()

    used = await asyncio.gather(*(db_call(open_connection)() for _ in range(THREADS)))
    # Django ignores close() on an in-memory SQLite database (it would destroy it): count the close_all calls.
    closed_on: list[str] = []
    close_all = connections.close_all
    monkeypatch.setattr(connections, "close_all", lambda: closed_on.append(thread_name()) or close_all())
    await close_db_connections()
    assert set(used) <= set(closed_on) and len(set(used)) == THREADS
    assert db.database_threads().threads == []  # a new pool, started on next use
    assert await db_call(User.objects.count)() == 0


async def test_after_a_database_error_every_thread_checks_its_connection_before_next_use(pool, monkeypatch):
    barrier = threading.Barrier(THREADS, timeout=5)

    def open_connection():
        User.objects.count()
        barrier.wait()
        return threading.current_thread().name

    await asyncio.gather(*(db_call(open_connection)() for _ in range(THREADS)))
    checked: list[str] = []
    real = db.connection_usable
    monkeypatch.setattr(db, "connection_usable", lambda c: checked.append(thread_name()) or real(c))

    def fail():
        raise DatabaseError("the server restarted")

    with pytest.raises(DatabaseError):
        await db_call(fail)()
    assert len(checked) == 1  # the failing thread, at once
    barrier.reset()
    await asyncio.gather(*(db_call(open_connection)() for _ in range(THREADS)))
    assert sorted(checked[1:]) == sorted(set(checked[1:])) and len(checked) == THREADS  # each other thread, once
    await asyncio.gather(*(db_call(thread_name)() for _ in range(THREADS)))
    assert len(checked) == THREADS  # not again


def test_an_in_memory_sqlite_database_gets_one_thread(settings, monkeypatch):
    settings.DB_SOCKET_THREADS = 8
    database = settings.DATABASES["default"]  # changed in place, restored after (no new DATABASES mid-run)
    monkeypatch.setitem(database, "ENGINE", "attendance_site.sqlite3")
    monkeypatch.setitem(database, "NAME", "file:memorydb_default?mode=memory&cache=shared")
    assert db.pool_size() == 1
    monkeypatch.setitem(database, "NAME", "/tmp/attendance.sqlite3")
    assert db.pool_size() == 8
    monkeypatch.setitem(database, "ENGINE", "django.db.backends.postgresql")
    monkeypatch.setitem(database, "NAME", "attendance")
    assert db.pool_size() == 8
