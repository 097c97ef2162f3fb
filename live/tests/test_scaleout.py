"""Scale-out over the wire: two real Daphne processes on different ports, sharing Redis (channel layer and
session store) and one PostgreSQL database, with real WebSocket and HTTP clients.

The servers use Redis database 14 (REDIS_URL's server, or 127.0.0.1:6379); every group, channel and
session key they write is named after ObjectIds created here, so runs never see each other's data, and
the keys of this module's ids are deleted at the end.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from live.tests.services_available import postgres_url, redis_url, require_postgres, require_redis
from tests.servers import DaphneServer, scratch_database

pytestmark = pytest.mark.wire

REDIS_DB = 14
RECV_TIMEOUT = 10.0
NO_SESSION = "No active attendance session"


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


# --- HTTP ------------------------------------------------------------------------------------------------


@dataclass
class User:
    id: str
    token: str


def call(server: DaphneServer, method: str, path: str, user: User | None = None, **kwargs: Any) -> Any:
    headers = {"Authorization": user.token} if user else {}
    response = httpx.request(method, server.http_url + path, headers=headers, timeout=10.0, **kwargs)
    assert response.is_success, (method, path, response.status_code, response.text)
    return response.json()["data"]


def sign_up(cluster: Cluster, server: DaphneServer, role: str) -> User:
    email = f"{role}-{secrets.token_hex(6)}@example.com"
    body = {"name": f"{role} {email[:12]}", "email": email, "password": "secret123", "role": role}
    user_id = call(server, "POST", "/auth/signup", json=body)["_id"]
    token = call(server, "POST", "/auth/login", json={"email": email, "password": "secret123"})["token"]
    cluster.ids.add(user_id)
    return User(user_id, token)


def class_with(cluster: Cluster, server: DaphneServer, teacher: User, students: list[User]) -> str:
    class_id = call(server, "POST", "/class", teacher, json={"className": "Scale-out " + secrets.token_hex(3)})["_id"]
    cluster.ids.add(class_id)
    for student in students:
        call(server, "POST", f"/class/{class_id}/add-student", teacher, json={"studentId": student.id})
    return class_id


def start_session(server: DaphneServer, teacher: User, class_id: str) -> None:
    assert call(server, "POST", "/attendance/start", teacher, json={"classId": class_id})["classId"] == class_id


def persisted_status(server: DaphneServer, student: User, class_id: str) -> str | None:
    data = call(server, "GET", f"/class/{class_id}/my-attendance", student)
    assert data["classId"] == class_id
    return data["status"]


# --- WebSocket -------------------------------------------------------------------------------------------


async def open_socket(server: DaphneServer, user: User) -> ClientConnection:
    """A socket that has joined its groups: the consumer handles frames in order, so once a first frame is
    answered, connect() (which joins the groups through Redis) has finished."""
    ws = await asyncio.wait_for(connect(f"{server.ws_url}?token={user.token}", open_timeout=10), RECV_TIMEOUT)
    await ws.send(json.dumps({"event": "PING"}))
    assert await recv(ws) == error("Unknown event")
    return ws


async def recv(ws: ClientConnection, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def ask(ws: ClientConnection, event: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    await send(ws, event, data)
    return await recv(ws)


async def send(ws: ClientConnection, event: str, data: dict[str, Any] | None = None) -> None:
    await ws.send(json.dumps({"event": event, "data": data}))


async def silent(*sockets: ClientConnection, seconds: float = 0.5) -> None:
    """Nothing more arrives on any of these sockets."""

    async def nothing(ws: ClientConnection) -> None:
        with pytest.raises(TimeoutError):
            extra = await asyncio.wait_for(ws.recv(), seconds)
            pytest.fail(f"unexpected message: {extra}")

    await asyncio.gather(*(nothing(ws) for ws in sockets))


async def drain(ws: ClientConnection, quiet: float = 1.5) -> list[dict[str, Any]]:
    """Every message until the socket stays quiet for `quiet` seconds."""
    received = []
    while True:
        try:
            received.append(await recv(ws, quiet))
        except TimeoutError:
            return received


async def close_all(*sockets: ClientConnection) -> None:
    await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True), RECV_TIMEOUT)


def error(message: str) -> dict[str, Any]:
    return {"event": "ERROR", "data": {"message": message}}


def marked(student: User, status: str) -> dict[str, Any]:
    return {"event": "ATTENDANCE_MARKED", "data": {"studentId": student.id, "status": status}}


def summary(present: int, absent: int) -> dict[str, Any]:
    return {"event": "TODAY_SUMMARY", "data": {"present": present, "absent": absent, "total": present + absent}}


def done(present: int, absent: int) -> dict[str, Any]:
    data = {"message": "Attendance persisted", "present": present, "absent": absent, "total": present + absent}
    return {"event": "DONE", "data": data}


def my_status(status: str) -> dict[str, Any]:
    return {"event": "MY_ATTENDANCE", "data": {"status": status}}


async def everyone_gets(expected: dict[str, Any], *sockets: ClientConnection) -> None:
    received = await asyncio.gather(*(recv(ws) for ws in sockets))
    assert received == [expected] * len(sockets)


# --- scenarios -------------------------------------------------------------------------------------------


async def test_broadcasts_reads_and_done_across_processes(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    teacher = sign_up(cluster, a, "teacher")
    s1, s2, s3 = (sign_up(cluster, server, "student") for server in (a, b, b))
    outsider = sign_up(cluster, b, "student")
    class_id = class_with(cluster, a, teacher, [s1, s2, s3])

    teacher_a, teacher_b = await open_socket(a, teacher), await open_socket(b, teacher)
    s1_a, s2_b, outsider_b = await open_socket(a, s1), await open_socket(b, s2), await open_socket(b, outsider)
    participants = (teacher_a, teacher_b, s1_a, s2_b)
    try:
        start_session(b, teacher, class_id)  # started through B's HTTP, used through A's sockets
        assert await ask(s1_a, "MY_ATTENDANCE") == my_status("not yet updated")

        # Every broadcast from A reaches the participants on A and on B; the causing socket first.
        await send(teacher_a, "ATTENDANCE_MARKED", {"studentId": s1.id, "status": "present"})
        await everyone_gets(marked(s1, "present"), *participants)
        await send(teacher_a, "ATTENDANCE_MARKED", {"studentId": s2.id, "status": "absent"})
        await everyone_gets(marked(s2, "absent"), *participants)

        # Reads on B see the marks made on A, and the reverse.
        assert await ask(s2_b, "MY_ATTENDANCE") == my_status("absent")
        assert await ask(s1_a, "MY_ATTENDANCE", {"classId": class_id}) == my_status("present")
        await send(teacher_b, "TODAY_SUMMARY")
        await everyone_gets(summary(1, 1), teacher_b, teacher_a, s1_a, s2_b)
        await send(teacher_b, "ATTENDANCE_MARKED", {"studentId": s2.id, "status": "present"})
        await everyone_gets(marked(s2, "present"), teacher_b, teacher_a, s1_a, s2_b)
        assert await ask(s2_b, "MY_ATTENDANCE") == my_status("present")
        assert await ask(s1_a, "MY_ATTENDANCE") == my_status("present")

        # DONE from both processes at once: one claims and persists, the other is told there is no session.
        await asyncio.gather(send(teacher_a, "DONE"), send(teacher_b, "DONE"))
        final = done(present=2, absent=1)  # s3 was never marked
        on_a, on_b = await asyncio.gather(drain(teacher_a), drain(teacher_b))
        assert sorted(map(json.dumps, on_a + on_b)) == sorted(map(json.dumps, [final, final, error(NO_SESSION)]))
        assert await recv(s1_a) == final
        assert await recv(s2_b) == final
        await silent(*participants, outsider_b)  # exactly one DONE each; nothing ever reached the outsider

        assert cluster.attendance_rows(class_id) == {s1.id: "present", s2.id: "present", s3.id: "absent"}
        assert [persisted_status(b, s, class_id) for s in (s1, s2, s3)] == ["present", "present", "absent"]
        assert [persisted_status(a, s, class_id) for s in (s1, s2, s3)] == ["present", "present", "absent"]
        assert await ask(s2_b, "MY_ATTENDANCE") == error(NO_SESSION)
        assert await ask(teacher_a, "TODAY_SUMMARY") == error(NO_SESSION)
        assert await ask(teacher_b, "DONE") == error(NO_SESSION)
    finally:
        await close_all(*participants, outsider_b)


async def test_starting_again_on_the_other_process_replaces_the_session(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    teacher, student = sign_up(cluster, a, "teacher"), sign_up(cluster, b, "student")
    class_id = class_with(cluster, b, teacher, [student])
    teacher_a, student_b = await open_socket(a, teacher), await open_socket(b, student)
    try:
        start_session(a, teacher, class_id)
        await send(teacher_a, "ATTENDANCE_MARKED", {"studentId": student.id, "status": "present"})
        await everyone_gets(marked(student, "present"), teacher_a, student_b)
        start_session(b, teacher, class_id)
        assert await ask(student_b, "MY_ATTENDANCE") == my_status("not yet updated")
        await send(teacher_a, "TODAY_SUMMARY")
        await everyone_gets(summary(0, 0), teacher_a, student_b)
        await silent(teacher_a, student_b)
    finally:
        await close_all(teacher_a, student_b)


async def test_marks_survive_sigkill_and_restart(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    teacher = sign_up(cluster, a, "teacher")
    s1, s2, s3, s4 = (sign_up(cluster, b, "student") for _ in range(4))
    class_id = class_with(cluster, a, teacher, [s1, s2, s3, s4])
    teacher_a = await open_socket(a, teacher)
    s1_b, s2_b = await open_socket(b, s1), await open_socket(b, s2)
    sockets = [teacher_a, s1_b, s2_b]
    try:
        start_session(a, teacher, class_id)
        await send(teacher_a, "ATTENDANCE_MARKED", {"studentId": s1.id, "status": "present"})
        await everyone_gets(marked(s1, "present"), teacher_a, s1_b, s2_b)
        await send(teacher_a, "ATTENDANCE_MARKED", {"studentId": s2.id, "status": "absent"})
        await everyone_gets(marked(s2, "absent"), teacher_a, s1_b, s2_b)

        # A crashes: no shutdown work at all.
        port = a.port
        a.kill()
        with pytest.raises(ConnectionClosed):
            await recv(teacher_a)

        # B keeps serving the session while A is down.
        assert await ask(s1_b, "MY_ATTENDANCE") == my_status("present")
        assert await ask(s2_b, "MY_ATTENDANCE") == my_status("absent")
        teacher_b = await open_socket(b, teacher)
        sockets.append(teacher_b)
        await send(teacher_b, "TODAY_SUMMARY")
        await everyone_gets(summary(1, 1), teacher_b, s1_b, s2_b)

        # A comes back on the same port: the marks are still there.
        await asyncio.wait_for(asyncio.to_thread(a.start), 60)
        assert a.port == port
        teacher_a = await open_socket(a, teacher)
        sockets.append(teacher_a)
        await send(teacher_a, "TODAY_SUMMARY")
        await everyone_gets(summary(1, 1), teacher_a, teacher_b, s1_b, s2_b)
        await send(teacher_a, "ATTENDANCE_MARKED", {"studentId": s3.id, "status": "present"})
        await everyone_gets(marked(s3, "present"), teacher_a, teacher_b, s1_b, s2_b)
        assert persisted_status(a, s1, class_id) is None  # nothing persisted before DONE

        # DONE on the restarted A persists every mark made before and after the crash, once.
        await send(teacher_a, "DONE")
        await everyone_gets(done(present=2, absent=2), teacher_a, teacher_b, s1_b, s2_b)  # s4 unmarked → absent
        await silent(teacher_a, teacher_b, s1_b, s2_b)
        expected = {s1.id: "present", s2.id: "absent", s3.id: "present", s4.id: "absent"}
        assert cluster.attendance_rows(class_id) == expected
        for student in (s1, s2, s3, s4):
            assert persisted_status(a, student, class_id) == expected[student.id]
            assert persisted_status(b, student, class_id) == expected[student.id]
        assert await ask(teacher_b, "DONE") == error(NO_SESSION)
    finally:
        await close_all(*sockets)
