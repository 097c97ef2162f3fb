"""live.db: the socket thread keeps its database connection between events and checks it after an idle gap
(docs/production.md: a connection that broke between events is replaced on next use, on every backend).

These run on whichever backend the run selects: the check is SQL's `is_usable()` or MongoDB's `ping`.
test_wire_live.py holds the same promise over the wire, with a real Daphne left idle past the interval."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace

import pytest
from pymongo.errors import AutoReconnect

from accounts.models import User
from live import db
from live.db import db_call
from tests.support import in_thread, make_user

IDLE_CHECK = 0.05  # seconds; the tests go idle for longer than this
IDLE = IDLE_CHECK * 3

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def short_idle_check(settings):
    settings.DB_IDLE_CHECK_SECONDS = IDLE_CHECK


@pytest.fixture(autouse=True)
async def one_socket_thread(settings):
    """These follow one thread's connection from event to event: a pool of one thread (DB_SOCKET_THREADS), or a
    call could land on a second thread with a connection of its own (test_db_threads.py covers the pool)."""
    settings.DB_SOCKET_THREADS = 1
    await db.close_db_connections()
    yield
    with contextlib.suppress(OSError):  # a test's fake connection may refuse to close ("already gone")
        await db.close_db_connections()


@pytest.fixture
def checks(monkeypatch) -> list[tuple[str, bool]]:
    """Every connection check the socket thread makes, as (alias, usable)."""
    made: list[tuple[str, bool]] = []
    real = db.connection_usable

    def spy(conn):
        usable = real(conn)
        made.append((conn.alias, usable))
        return usable

    monkeypatch.setattr(db, "connection_usable", spy)
    return made


def count_users() -> int:
    return User.objects.count()


async def test_a_connection_idle_past_the_interval_is_checked_once_then_serves(checks):
    await db_call(make_user)("teacher")
    assert await db_call(count_users)() == 1  # opens the thread's connection
    checks.clear()
    assert await db_call(count_users)() == 1
    assert checks == []  # in use: no round trip for a check

    await asyncio.sleep(IDLE)
    assert await db_call(count_users)() == 1
    # One check, and it found the connection usable (on MongoDB it raised NotImplementedError before, and
    # every later event failed with it).
    assert checks == [("default", True)]
    assert await db_call(count_users)() == 1
    assert checks == [("default", True)]


async def test_a_check_that_raises_is_not_repeated_before_every_event(monkeypatch):
    await db_call(count_users)()
    await asyncio.sleep(IDLE)
    calls = []

    def broken_check() -> None:
        calls.append(1)
        raise RuntimeError("the check itself failed")

    monkeypatch.setattr(db, "_drop_unusable_connections", broken_check)
    with pytest.raises(RuntimeError):
        await db_call(count_users)()
    # The idle timer was reset all the same: the next event runs its query instead of failing in the check.
    assert await db_call(count_users)() == 0
    assert calls == [1]


def test_a_backend_without_a_check_of_its_own_counts_as_unusable_not_as_an_error():
    def not_implemented():
        raise NotImplementedError("subclasses of BaseDatabaseWrapper may require an is_usable() method")

    backend = SimpleNamespace(vendor="other", alias="other", is_usable=not_implemented)
    assert db.connection_usable(backend) is False


def test_a_mongodb_client_that_does_not_answer_a_ping_counts_as_unusable():
    def ping(command):
        assert command == "ping"
        raise AutoReconnect("connection closed")

    mongodb = SimpleNamespace(
        vendor="mongodb", alias="mongo", connection=SimpleNamespace(admin=SimpleNamespace(command=ping))
    )
    assert db.connection_usable(mongodb) is False


def test_an_unusable_connection_is_closed_and_a_failing_close_is_not_an_error(monkeypatch):
    closed = []

    def close():
        closed.append(1)
        raise OSError("already gone")

    broken = SimpleNamespace(vendor="other", alias="other", connection=object(), is_usable=lambda: False, close=close)
    monkeypatch.setattr(db.connections, "all", lambda initialized_only: [broken])
    db._drop_unusable_connections()
    assert closed == [1]


# --- brief reads on the loop, where the database is an embedded file ---------------------------------------------


def test_socket_reads_run_on_the_loop_only_on_an_sqlite_file_on_the_fast_path(settings, monkeypatch):
    """The in-process tests' in-memory SQLite keeps them on threads (the loop's thread is the test's own, with its
    transaction); so do PostgreSQL and MongoDB (network, outages) and LIVE_FAST_PATH=0."""
    from django.db import connection

    from server import on_loop

    assert on_loop.socket_reads_on_loop() is False  # in memory, or a database server
    monkeypatch.setattr(on_loop.SQLiteCreation, "is_in_memory_db", staticmethod(lambda name: False))
    assert on_loop.socket_reads_on_loop() is False  # worked out once, ...
    settings.LIVE_FAST_PATH = False  # ... and again after a change to the settings it reads
    assert on_loop.socket_reads_on_loop() is False
    settings.LIVE_FAST_PATH = True
    assert on_loop.socket_reads_on_loop() is (connection.vendor == "sqlite")  # as if a file
    on_loop.socket_reads_on_loop.cache_clear()  # not left for the tests after, whatever the teardowns' order


@pytest.mark.parametrize("on_loop", [True, False])
async def test_a_loop_read_runs_on_the_loop_only_where_told(monkeypatch, on_loop):
    import threading

    monkeypatch.setattr(db, "socket_reads_on_loop", lambda: on_loop)
    here = threading.get_ident()

    def read(user_id):
        # A database read works either way: Django's async-safety check does not refuse it on the loop.
        return threading.get_ident(), User.objects.filter(pk=user_id).values_list("name", flat=True).first()

    user = await in_thread(make_user, "student", "Ann")
    thread, name = await db.loop_read(read)(user.id)
    assert name == "Ann"
    assert (thread == here) is on_loop


def test_each_function_is_wrapped_once():
    """Call sites wrap on every event (`db_call(selectors.x)(...)`): the wrapper is made once and kept, and a
    function put in place of another gets its own."""

    def read():
        return 1

    def other():
        return 2

    assert db.db_call(read) is db.db_call(read)
    assert db.loop_read(read) is db.loop_read(read)
    assert db.loop_read(other) is not db.loop_read(read)
    assert db.db_call(read) is not db.loop_read(read)
