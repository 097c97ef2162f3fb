"""A fault of docs/production.md: a database connection that broke between events is replaced on next use; at most the
event that met the break gets an ERROR. Held with a real Daphne process on the run's backend:
- PostgreSQL: every backend serving the server's database terminated under it (what a server restart or a
  failover does to every open connection);
- MongoDB: a private SecantusDB server (same topology as the run) killed and started again on the same port
  and storage, under the running Daphne.

SQLite has no connections to break (a file opened in-process).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from tests.servers import DaphneServer, MongoServer
from tests.support import (
    INTERNAL_ERROR,
    PERSIST_FAILED,
    Person,
    assert_ok,
    backend_of,
    create_class,
    done,
    enrol,
    error,
    frame,
    mark,
    marked,
    own_wire_server,
    recv,
    start,
    wire_attendance_rows,
)

pytestmark = [pytest.mark.wire]


@dataclass
class DatabaseFaults:
    """A wire server of its own, and a way to break every database connection it holds."""

    server: DaphneServer
    break_connections: Callable[[], None]


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFaults]:
    backend = backend_of(os.environ)
    if backend == "sqlite":
        pytest.skip("SQLite has no server connections to break")
    tmp_dir = tmp_path_factory.mktemp("db-faults")
    if backend == "postgresql":
        with own_wire_server(tmp_dir) as server:
            yield DatabaseFaults(server, lambda: terminate_backends(server))
        return
    with (
        MongoServer(tmp_dir).start() as mongo,
        own_wire_server(tmp_dir, {"MONGODB_URI": mongo.uri("faults")}) as server,
    ):
        yield DatabaseFaults(server, mongo.restart)


def terminate_backends(server: DaphneServer) -> None:
    """Terminate every PostgreSQL backend serving the server's database (there is at least one)."""
    import psycopg

    url = server.env["DATABASE_URL"]
    database = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    assert rows, "the server held no connection to break"


def test_http_requests_after_the_connections_broke_all_succeed(faults: DatabaseFaults) -> None:
    with httpx.Client(base_url=faults.server.http_url, timeout=10) as api:
        teacher = Person(api, "teacher")
        for _ in range(5):  # the pool holds several connections now
            assert_ok(api.get("/auth/me", headers=teacher.headers))

        faults.break_connections()

        # The pool checks a connection before it hands it out: no request meets the break.
        statuses = [api.get("/auth/me", headers=teacher.headers).status_code for _ in range(10)]
        assert statuses == [200] * 10
        assert_ok(api.post("/class", json={"className": "After the restart"}, headers=teacher.headers), 201)


async def test_socket_events_after_the_connections_broke_recover_at_the_first_or_second(
    faults: DatabaseFaults,
) -> None:
    from websockets.asyncio.client import connect

    with httpx.Client(base_url=faults.server.http_url, timeout=10) as api:
        teacher, student = Person(api, "teacher"), Person(api, "student")
        class_id = create_class(api, teacher)
        enrol(api, teacher, class_id, student)
        start(api, teacher, class_id)

        url = faults.server.ws_url
        async with (
            connect(f"{url}?token={teacher.token}", open_timeout=5) as teacher_ws,
            connect(f"{url}?token={student.token}", open_timeout=5) as student_ws,
        ):
            # The socket's database thread holds a connection now (the enrolment check).
            await teacher_ws.send(mark(student.id, "absent"))
            assert await recv(teacher_ws) == marked(student.id, "absent")
            assert await recv(student_ws) == marked(student.id, "absent")

            faults.break_connections()
            replies: list[dict] = []
            for _ in range(2):
                await teacher_ws.send(mark(student.id, "present"))
                replies.append(await recv(teacher_ws))
            # At most the event that met the break fails; the connection is replaced for the next one.
            assert replies[-1] == marked(student.id, "present"), replies
            assert replies[0] in (marked(student.id, "present"), error(INTERNAL_ERROR)), replies
            assert await recv(student_ws) == marked(student.id, "present")
            if replies[0] == marked(student.id, "present"):
                assert await recv(student_ws) == marked(student.id, "present")

            faults.break_connections()
            await teacher_ws.send(frame("DONE"))
            reply = await recv(teacher_ws)
            if reply != done(1, 0, 1):
                # The DONE that met the break: the session is kept, and the retry persists it.
                assert reply == error(PERSIST_FAILED), reply
                await teacher_ws.send(frame("DONE"))
                reply = await recv(teacher_ws)
            assert reply == done(1, 0, 1)
            assert await recv(student_ws) == done(1, 0, 1)

        rows = wire_attendance_rows(faults.server, class_id)
        assert [(sid, status) for sid, status, _ in rows] == [(student.id, "present")]
