"""Scale-out over the wire: two real Daphne processes on different ports, sharing Redis (the channel layer) and
one PostgreSQL database (live sessions included), with real WebSocket and HTTP clients.

The servers use Redis database 14 (REDIS_URL's server, or 127.0.0.1:6379); every group, channel and
session key they write is named after ObjectIds created here, so runs never see each other's data, and
the keys of this module's ids are deleted at the end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
import redis
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from live.tests.services_available import postgres_url, redis_url, require_postgres, require_redis
from tests.servers import DaphneServer, scratch_database
from tests.support import (
    NO_SESSION,
    NOT_YET_UPDATED,
    UNKNOWN_EVENT,
    Person,
    ask,
    create_class,
    done,
    drain,
    enrol,
    error,
    frame,
    mark,
    marked,
    my_status,
    persisted_status,
    recv,
    recv_all,
    silent,
    start,
    summary,
)

pytestmark = pytest.mark.wire

REDIS_DB = 14
# Across processes a message goes through Redis: wait a little longer before calling a socket quiet.
QUIET = 0.5


# --- the two processes ---------------------------------------------------------------------------------


@dataclass
class Cluster:
    a: DaphneServer
    b: DaphneServer
    database_url: str
    redis_url: str
    ids: set[str] = field(default_factory=set)

    def attendance_rows(self, class_id: str) -> dict[str, str]:
        """The persisted records of a class: student id → status (a duplicate would fail the count)."""
        with psycopg.connect(self.database_url, connect_timeout=5) as conn:
            rows = conn.execute(
                'SELECT "studentId", status FROM attendance WHERE "classId" = %s', [class_id]
            ).fetchall()
        found = dict(rows)
        assert len(found) == len(rows), f"a student persisted twice: {rows}"
        return found

    def forget_redis_keys(self) -> None:
        """Delete what the servers left in Redis about this module's users and classes: keys named after
        them, and channels-redis queues without expiry still holding their messages (a killed process's)."""
        ids = [i.encode() for i in self.ids]
        with redis.Redis.from_url(self.redis_url, socket_timeout=5) as client:
            for key in client.scan_iter(count=1000):
                if any(i in key for i in ids):
                    client.delete(key)
                elif key.startswith(b"asgi") and client.type(key) == b"zset" and client.pttl(key) == -1:
                    if any(i in message for message in client.zrange(key, 0, -1) for i in ids):
                        client.delete(key)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    shared_redis = redis_url(REDIS_DB)
    require_redis(shared_redis)
    postgres = postgres_url()
    require_postgres(postgres)
    tmp_dir = tmp_path_factory.mktemp("scaleout")
    with ExitStack() as stack:
        with pytest.MonkeyPatch.context() as patch:  # scratch_database picks the backend from the environment
            patch.setenv("DATABASE_URL", postgres)
            patch.delenv("MONGODB_URI", raising=False)
            db_env = stack.enter_context(scratch_database(tmp_dir))
        env = {**db_env, "MONGODB_URI": "", "REDIS_URL": shared_redis, "SESSION_TTL_SECONDS": "600"}
        a = DaphneServer(env, log_path=tmp_dir / "a.log")
        b = DaphneServer(env, log_path=tmp_dir / "b.log")
        assert a.port != b.port
        cluster = Cluster(a=a, b=b, database_url=db_env["DATABASE_URL"], redis_url=shared_redis)
        stack.callback(cluster.forget_redis_keys)  # runs last: after both servers stopped
        a.migrate()
        stack.callback(a.stop)
        stack.callback(b.stop)
        a.start()
        b.start()
        yield cluster


@pytest.fixture(autouse=True)
def both_running(cluster: Cluster) -> Cluster:
    """A test that killed A and failed before restarting it must not break the next one."""
    for server in (cluster.a, cluster.b):
        if server.process is None or server.process.poll() is not None:
            server.start()
    return cluster


# --- people, classes and sockets (the shared helpers; every id is noted for forget_redis_keys) -----------


def sign_up(cluster: Cluster, server: DaphneServer, role: str) -> Person:
    with httpx.Client(base_url=server.http_url, timeout=10.0) as api:
        person = Person(api, role)
    cluster.ids.add(person.id)
    return person


def class_with(cluster: Cluster, server: DaphneServer, teacher: Person, students: list[Person]) -> str:
    with httpx.Client(base_url=server.http_url, timeout=10.0) as api:
        class_id = create_class(api, teacher)
        cluster.ids.add(class_id)
        enrol(api, teacher, class_id, *students)
    return class_id


def start_session(server: DaphneServer, teacher: Person, class_id: str) -> None:
    with httpx.Client(base_url=server.http_url, timeout=10.0) as api:
        start(api, teacher, class_id)


def status_on(server: DaphneServer, student: Person, class_id: str) -> str | None:
    with httpx.Client(base_url=server.http_url, timeout=10.0) as api:
        return persisted_status(api, student, class_id)


@pytest.fixture
def open_socket(wire_sockets: Any) -> Any:
    """`await open_socket(server, person)` → a socket that has joined its groups: the consumer handles frames
    in order, so once a first frame is answered, connect() (which joins the groups through Redis) has
    finished. Closed at the end of the test."""

    async def open_(server: DaphneServer, person: Person) -> ClientConnection:
        ws = await wire_sockets(server, person)
        assert await ask(ws, frame("PING")) == error(UNKNOWN_EVENT)
        return ws

    return open_


# --- scenarios -------------------------------------------------------------------------------------------


async def test_broadcasts_reads_and_done_across_processes(cluster: Cluster, open_socket: Any) -> None:
    a, b = cluster.a, cluster.b
    teacher = sign_up(cluster, a, "teacher")
    s1, s2, s3 = (sign_up(cluster, server, "student") for server in (a, b, b))
    outsider = sign_up(cluster, b, "student")
    class_id = class_with(cluster, a, teacher, [s1, s2, s3])

    teacher_a, teacher_b = await open_socket(a, teacher), await open_socket(b, teacher)
    s1_a, s2_b, outsider_b = await open_socket(a, s1), await open_socket(b, s2), await open_socket(b, outsider)
    participants = (teacher_a, teacher_b, s1_a, s2_b)
    start_session(b, teacher, class_id)  # started through B's HTTP, used through A's sockets
    assert await ask(s1_a, frame("MY_ATTENDANCE")) == my_status(NOT_YET_UPDATED)

    # Every broadcast from A reaches the participants on A and on B; the causing socket first.
    await teacher_a.send(mark(s1.id, "present"))
    await recv_all(marked(s1.id, "present"), *participants)
    await teacher_a.send(mark(s2.id, "absent"))
    await recv_all(marked(s2.id, "absent"), *participants)

    # Reads on B see the marks made on A, and the reverse.
    assert await ask(s2_b, frame("MY_ATTENDANCE")) == my_status("absent")
    assert await ask(s1_a, frame("MY_ATTENDANCE", {"classId": class_id})) == my_status("present")
    await teacher_b.send(frame("TODAY_SUMMARY"))
    await recv_all(summary(1, 1), teacher_b, teacher_a, s1_a, s2_b)
    await teacher_b.send(mark(s2.id, "present"))
    await recv_all(marked(s2.id, "present"), teacher_b, teacher_a, s1_a, s2_b)
    assert await ask(s2_b, frame("MY_ATTENDANCE")) == my_status("present")
    assert await ask(s1_a, frame("MY_ATTENDANCE")) == my_status("present")

    # DONE from both processes at once: one claims and persists, the other is told there is no session.
    await asyncio.gather(teacher_a.send(frame("DONE")), teacher_b.send(frame("DONE")))
    final = done(2, 1, 3)  # s3 was never marked
    on_a, on_b = await asyncio.gather(drain(teacher_a, 1.5), drain(teacher_b, 1.5))
    assert sorted(map(json.dumps, on_a + on_b)) == sorted(map(json.dumps, [final, final, error(NO_SESSION)]))
    assert await recv(s1_a) == final
    assert await recv(s2_b) == final
    await silent(*participants, outsider_b, timeout=QUIET)  # exactly one DONE each; nothing ever reached the outsider

    assert cluster.attendance_rows(class_id) == {s1.id: "present", s2.id: "present", s3.id: "absent"}
    assert [status_on(b, s, class_id) for s in (s1, s2, s3)] == ["present", "present", "absent"]
    assert [status_on(a, s, class_id) for s in (s1, s2, s3)] == ["present", "present", "absent"]
    assert await ask(s2_b, frame("MY_ATTENDANCE")) == error(NO_SESSION)
    assert await ask(teacher_a, frame("TODAY_SUMMARY")) == error(NO_SESSION)
    assert await ask(teacher_b, frame("DONE")) == error(NO_SESSION)


async def test_starting_again_on_the_other_process_replaces_the_session(cluster: Cluster, open_socket: Any) -> None:
    a, b = cluster.a, cluster.b
    teacher, student = sign_up(cluster, a, "teacher"), sign_up(cluster, b, "student")
    class_id = class_with(cluster, b, teacher, [student])
    teacher_a, student_b = await open_socket(a, teacher), await open_socket(b, student)
    start_session(a, teacher, class_id)
    await teacher_a.send(mark(student.id, "present"))
    await recv_all(marked(student.id, "present"), teacher_a, student_b)
    start_session(b, teacher, class_id)
    assert await ask(student_b, frame("MY_ATTENDANCE")) == my_status(NOT_YET_UPDATED)
    await teacher_a.send(frame("TODAY_SUMMARY"))
    await recv_all(summary(0, 0), teacher_a, student_b)
    await silent(teacher_a, student_b, timeout=QUIET)


async def test_marks_survive_sigkill_and_restart(cluster: Cluster, open_socket: Any) -> None:
    a, b = cluster.a, cluster.b
    teacher = sign_up(cluster, a, "teacher")
    s1, s2, s3, s4 = (sign_up(cluster, b, "student") for _ in range(4))
    class_id = class_with(cluster, a, teacher, [s1, s2, s3, s4])
    teacher_a = await open_socket(a, teacher)
    s1_b, s2_b = await open_socket(b, s1), await open_socket(b, s2)
    start_session(a, teacher, class_id)
    await teacher_a.send(mark(s1.id, "present"))
    await recv_all(marked(s1.id, "present"), teacher_a, s1_b, s2_b)
    await teacher_a.send(mark(s2.id, "absent"))
    await recv_all(marked(s2.id, "absent"), teacher_a, s1_b, s2_b)

    # A crashes: no shutdown work at all.
    port = a.port
    a.kill()
    with pytest.raises(ConnectionClosed):
        await recv(teacher_a)

    # B keeps serving the session while A is down.
    assert await ask(s1_b, frame("MY_ATTENDANCE")) == my_status("present")
    assert await ask(s2_b, frame("MY_ATTENDANCE")) == my_status("absent")
    teacher_b = await open_socket(b, teacher)
    await teacher_b.send(frame("TODAY_SUMMARY"))
    await recv_all(summary(1, 1), teacher_b, s1_b, s2_b)

    # A comes back on the same port: the marks are still there.
    await asyncio.wait_for(asyncio.to_thread(a.start), 60)
    assert a.port == port
    teacher_a = await open_socket(a, teacher)
    await teacher_a.send(frame("TODAY_SUMMARY"))
    await recv_all(summary(1, 1), teacher_a, teacher_b, s1_b, s2_b)
    await teacher_a.send(mark(s3.id, "present"))
    await recv_all(marked(s3.id, "present"), teacher_a, teacher_b, s1_b, s2_b)
    assert status_on(a, s1, class_id) is None  # nothing persisted before DONE

    # DONE on the restarted A persists every mark made before and after the crash, once.
    await teacher_a.send(frame("DONE"))
    await recv_all(done(2, 2, 4), teacher_a, teacher_b, s1_b, s2_b)  # s4 unmarked → absent
    await silent(teacher_a, teacher_b, s1_b, s2_b, timeout=QUIET)
    expected = {s1.id: "present", s2.id: "absent", s3.id: "present", s4.id: "absent"}
    assert cluster.attendance_rows(class_id) == expected
    for student in (s1, s2, s3, s4):
        assert status_on(a, student, class_id) == expected[student.id]
        assert status_on(b, student, class_id) == expected[student.id]
    assert await ask(teacher_b, frame("DONE")) == error(NO_SESSION)
