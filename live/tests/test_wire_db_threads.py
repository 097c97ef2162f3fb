"""Over the wire, on the run's database (a file SQLite database, or PostgreSQL with DATABASE_URL):

- one DONE waiting on a database lock stalls only itself: while another connection holds the lock, another
  teacher's socket gets its answers (its marks too where the lock is on the records only: PostgreSQL) and a new
  socket connects (socket database work runs on a pool of threads,
  live/db.py; on one thread every socket of the process waited for the lock);
- on SQLite, DONE does not fail beside other writes (class creations): transactions begin IMMEDIATE and wait for
  the write lock (attendance_site/settings.py), where a deferred one failed at once ("database is locked").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support import (
    Person,
    ask,
    backend_of,
    big_class,
    create_class,
    done,
    frame,
    mark,
    marked,
    my_status,
    new_classroom,
    own_wire_server,
    recv,
    start,
    summary,
    wire_backend,
)

pytestmark = pytest.mark.wire

PROMPT = 2.0  # seconds: an event that needs no lock is answered within this while DONE waits for one


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    with own_wire_server(tmp_path_factory.mktemp("db-threads"), {"LIVE_UPKEEP_SECONDS": "3600"}) as server:
        yield server


@contextlib.contextmanager
def write_lock(server) -> Iterator[None]:
    """Another connection holds the lock DONE's insert needs; readers are not blocked (WAL on SQLite)."""
    if wire_backend(server) == "mongodb":
        pytest.skip("no table lock to hold on MongoDB")
    url = server.env["DATABASE_URL"]
    if wire_backend(server) == "sqlite":
        conn = sqlite3.connect(urlsplit(url).path, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")  # in WAL mode: excludes writers only
            yield
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    elif wire_backend(server) == "postgresql":
        import psycopg

        with psycopg.connect(url) as conn:
            conn.execute("LOCK TABLE attendance IN EXCLUSIVE MODE")  # reads go on, inserts of records wait
            yield
            conn.rollback()
    else:
        pytest.skip("no table lock to hold on MongoDB")


async def test_a_done_waiting_on_a_lock_does_not_stall_other_sockets(server) -> None:
    with httpx.Client(base_url=server.http_url, timeout=10) as api:
        a = new_classroom(api, 1)
        b = new_classroom(api, 1)
        newcomer = Person(api, "student")
        start(api, a.teacher, a.class_id)
        start(api, b.teacher, b.class_id)
    student_b = b.students[0]
    url = server.ws_url
    async with (
        connect(f"{url}?token={a.teacher.token}", open_timeout=5) as ws_a,
        connect(f"{url}?token={b.teacher.token}", open_timeout=5) as ws_b,
        connect(f"{url}?token={student_b.token}", open_timeout=5) as ws_student,
    ):
        # Every thread has a connection open before the lock (a new one would read the lock-free schema anyway).
        assert await ask(ws_b, frame("TODAY_SUMMARY")) == summary(0, 0)
        assert await recv(ws_student) == summary(0, 0)
        # A mark is a write of the session (live/commands.py): SQLite has one writer for the whole file, so there
        # it is made before the lock; PostgreSQL locks rows, and another session's mark goes on beside DONE.
        assert await ask(ws_b, mark(student_b.id)) == marked(student_b.id, "present")
        assert await recv(ws_student) == marked(student_b.id, "present")
        with write_lock(server):
            await ws_a.send(frame("DONE"))
            await asyncio.sleep(0.3)  # DONE is waiting on the lock now
            started = time.monotonic()
            if wire_backend(server) == "postgresql":
                assert await ask(ws_b, mark(student_b.id), timeout=PROMPT) == marked(student_b.id, "present")
                assert await recv(ws_student, timeout=PROMPT) == marked(student_b.id, "present")
            assert await ask(ws_b, frame("TODAY_SUMMARY"), timeout=PROMPT) == summary(1, 0)
            assert await recv(ws_student, timeout=PROMPT) == summary(1, 0)
            assert await ask(ws_student, frame("MY_ATTENDANCE"), timeout=PROMPT) == my_status("present")
            async with connect(f"{url}?token={newcomer.token}", open_timeout=PROMPT) as ws_new:
                assert (await ask(ws_new, frame("MY_ATTENDANCE"), timeout=PROMPT))["event"] == "ERROR"  # no class
            assert time.monotonic() - started < 2 * PROMPT
            with pytest.raises(TimeoutError):
                await recv(ws_a, timeout=0.2)  # still waiting: the lock is held
        assert await recv(ws_a, timeout=15) == done(0, 1, 1)


@pytest.mark.skipif(backend_of(os.environ) != "sqlite", reason="SQLite's deferred transactions")
async def test_done_does_not_fail_beside_other_writes_on_sqlite(server) -> None:
    students, rounds = 500, 4
    with httpx.Client(base_url=server.http_url, timeout=30) as api:
        teachers = [Person(api, "teacher") for _ in range(2)]
        classes = [big_class(server, teacher, students)[0] for teacher in teachers]
        writer = Person(api, "teacher")

    stop = threading.Event()
    created: list[int] = []

    def create_classes() -> None:
        with httpx.Client(base_url=server.http_url, timeout=30) as api:
            while not stop.is_set():
                create_class(api, writer)
                created.append(1)

    writers = [threading.Thread(target=create_classes) for _ in range(3)]
    for thread in writers:
        thread.start()
    try:
        replies = []
        async with contextlib.AsyncExitStack() as stack:
            sockets = [
                await stack.enter_async_context(connect(f"{server.ws_url}?token={t.token}", open_timeout=5))
                for t in teachers
            ]
            for _ in range(rounds):
                with httpx.Client(base_url=server.http_url, timeout=30) as api:
                    for teacher, class_id in zip(teachers, classes, strict=True):
                        start(api, teacher, class_id)
                replies += await asyncio.gather(*(ask(ws, frame("DONE"), timeout=30) for ws in sockets))
    finally:
        stop.set()
        for thread in writers:
            thread.join(30)
    assert len(created) > 0
    assert replies == [done(0, students, students)] * (rounds * len(teachers)), replies
