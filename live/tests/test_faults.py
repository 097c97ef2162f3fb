"""Faults of docs/production.md, held with real processes: two Daphne workers sharing a private redis-server (started
here on a free port, never the shared one) and a scratch database of the run's backend; the tests kill and
restart Redis, cut its connections, SIGKILL a worker mid-DONE, let tokens expire and accounts go, and keep
quiet for longer than every timeout in the path — with no client ever reconnecting unless it was cut off.

The workers run with a short upkeep period and claim lease (LIVE_UPKEEP_SECONDS, LIVE_CLAIM_LEASE_SECONDS)
so that recovery is observed in seconds; test_commands checks that the defaults keep the promised minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from tests.servers import DaphneServer, RedisServer, scratch_database
from tests.support import (
    CLOSE_POLICY_VIOLATION,
    NO_SESSION,
    NOT_YET_UPDATED,
    TEACHER_ONLY,
    UNAUTHORIZED,
    WS_UNAUTHORIZED,
    Classroom,
    Person,
    assert_error,
    done,
    error,
    expect_close,
    forge_token,
    frame,
    mark,
    marked,
    my_status,
    new_classroom,
    recv,
    server_jwt_secret,
    silent,
    start,
    summary,
    wire_attendance_rows,
)

pytestmark = pytest.mark.wire

UPKEEP_SECONDS = 1.0
LEASE_SECONDS = 3.0
# The promise: a lost channel-layer connection interrupts broadcasts for at most this long.
MAX_INTERRUPTION = 5.0
# Longer than every timeout between a socket and Redis: channels-redis' 5 s blocking receive, the layer's
# 15 s socket timeout, Daphne's 20 s ping interval and 30 s ping timeout, the hub's probe.
QUIET_SECONDS = float(os.environ.get("LIVE_FAULT_QUIET_SECONDS", "61"))


@dataclass
class Cluster:
    a: DaphneServer
    b: DaphneServer
    redis: RedisServer
    db_env: dict[str, str]

    def http(self, server: DaphneServer) -> httpx.Client:
        return httpx.Client(base_url=server.http_url, timeout=10.0)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp_dir = tmp_path_factory.mktemp("faults")
    with ExitStack() as stack:
        redis_server = RedisServer(tmp_dir).start()
        stack.callback(redis_server.kill)
        db_env = stack.enter_context(scratch_database(tmp_dir))
        env = {
            **db_env,
            "REDIS_URL": redis_server.url,
            "LIVE_UPKEEP_SECONDS": str(UPKEEP_SECONDS),
            "LIVE_CLAIM_LEASE_SECONDS": str(LEASE_SECONDS),
        }
        a = DaphneServer(env, log_path=tmp_dir / "a.log")
        b = DaphneServer(env, log_path=tmp_dir / "b.log")
        a.migrate()
        stack.callback(a.stop)
        stack.callback(b.stop)
        a.start()
        b.start()
        yield Cluster(a, b, redis_server, db_env)


@pytest.fixture(autouse=True)
def everything_running(cluster: Cluster) -> Cluster:
    """A test that killed something and failed before bringing it back must not break the next one."""
    if not cluster.redis.running():
        cluster.redis.start()
    for server in (cluster.a, cluster.b):
        if server.process is None or server.process.poll() is not None:
            server.start()
    return cluster


@pytest.fixture
def sockets(wire_sockets: Any) -> Any:
    """`await sockets(server, person)` → an open socket; all closed at the end (the shared `wire_sockets`)."""
    return wire_sockets


def room(cluster: Cluster, n_students: int = 2) -> Classroom:
    """A class on A with `n_students`, its session started."""
    with cluster.http(cluster.a) as api:
        classroom = new_classroom(api, n_students)
        start(api, classroom.teacher, classroom.class_id)
    return classroom


async def first_delivery(sender: ClientConnection, receiver: ClientConnection, text: str, expected: dict) -> float:
    """Send `text` every 100 ms until `receiver` gets `expected`; the seconds that took. The sender's own
    replies (its echo, or an ERROR while Redis is away) are read and dropped."""
    began = time.monotonic()

    async def keep_sending() -> None:
        while True:
            await sender.send(text)
            with contextlib.suppress(TimeoutError):
                while True:  # drain the sender's replies
                    await recv(sender, 0.1)

    sending = asyncio.create_task(keep_sending())
    try:
        while True:
            message = await recv(receiver, MAX_INTERRUPTION * 3)
            if message == expected:
                return time.monotonic() - began
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending


async def settle(*sockets: ClientConnection) -> None:
    """Read whatever is still in flight (repeated sends of `first_delivery`)."""
    for ws in sockets:
        with contextlib.suppress(TimeoutError):
            while True:
                await recv(ws, 0.5)


# --- the channel layer -------------------------------------------------------------------------------------


async def test_a_quiet_period_longer_than_every_timeout_changes_nothing(cluster, sockets):
    r = room(cluster)
    teacher = await sockets(cluster.a, r.teacher)
    student_b = await sockets(cluster.b, r.students[0])
    student_a = await sockets(cluster.a, r.students[1])
    await teacher.send(mark(r.students[0].id))
    for ws in (teacher, student_b, student_a):
        assert await recv(ws) == marked(r.students[0].id, "present")

    await asyncio.sleep(QUIET_SECONDS)

    await teacher.send(mark(r.students[1].id, "absent"))
    for ws in (teacher, student_b, student_a):
        assert await recv(ws, MAX_INTERRUPTION) == marked(r.students[1].id, "absent")
    await student_b.send(frame("TODAY_SUMMARY"))
    assert await recv(student_b) == error(TEACHER_ONLY)


async def test_killed_redis_connections_interrupt_broadcasts_for_at_most_5_s(cluster, sockets):
    r = room(cluster)
    teacher = await sockets(cluster.a, r.teacher)
    student = await sockets(cluster.b, r.students[0])
    await teacher.send(frame("TODAY_SUMMARY"))
    assert await recv(student) == summary(0, 0)

    with cluster.redis.client() as admin:
        killed = admin.execute_command("CLIENT", "KILL", "TYPE", "normal")
    assert killed >= 2  # at least each worker's receiving connection

    took = await first_delivery(teacher, student, mark(r.students[0].id), marked(r.students[0].id, "present"))
    assert took <= MAX_INTERRUPTION, f"broadcasts were interrupted for {took:.1f} s"
    await settle(teacher, student)
    # The same sockets: nobody reconnected. And every direction works again.
    other = await sockets(cluster.a, r.students[1])
    await student.send(frame("MY_ATTENDANCE"))
    assert await recv(student) == my_status("present")
    await teacher.send(frame("TODAY_SUMMARY"))
    for ws in (teacher, student, other):
        assert await recv(ws) == summary(1, 0)


async def test_a_restarted_redis_interrupts_broadcasts_for_at_most_5_s(cluster, sockets):
    r = room(cluster)
    teacher = await sockets(cluster.a, r.teacher)
    student_b = await sockets(cluster.b, r.students[0])
    student_a = await sockets(cluster.a, r.students[1])
    await teacher.send(frame("TODAY_SUMMARY"))
    assert await recv(student_b) == summary(0, 0)

    cluster.redis.restart()  # forgets every group membership, and the session (no persistence)
    restarted = time.monotonic()
    with cluster.http(cluster.b) as api:
        start(api, r.teacher, r.class_id)  # the teacher starts again: the sockets stay as they are
    await first_delivery(teacher, student_b, frame("TODAY_SUMMARY"), summary(0, 0))
    took = time.monotonic() - restarted
    assert took <= MAX_INTERRUPTION, f"broadcasts were interrupted for {took:.1f} s"
    await settle(teacher, student_b, student_a)
    await teacher.send(mark(r.students[1].id))
    for ws in (teacher, student_b, student_a):
        assert await recv(ws) == marked(r.students[1].id, "present")


async def test_connect_then_broadcast_at_once_never_misses(cluster, sockets):
    """A broadcast sent right after a socket saw `open` reaches it, across workers, every time."""
    r = room(cluster, n_students=1)
    teacher = await sockets(cluster.a, r.teacher)
    for attempt in range(20):
        server = cluster.b if attempt % 2 else cluster.a
        student = await sockets(server, r.students[0])
        await teacher.send(frame("TODAY_SUMMARY"))
        assert await recv(teacher) == summary(0, 0)
        assert await recv(student) == summary(0, 0), f"missed on attempt {attempt}"
        await student.close()


SEED_MANY_CLASSES = """
import json
from accounts.models import User
from accounts.tokens import issue_token
from classes.models import Class, Enrollment
from live.commands import start_session

students = User.objects.bulk_create(
    [User(email=f"many-{i}-{token}@example.com", name=f"Many {i}", role="student") for i in range(30)]
)
teachers = User.objects.bulk_create(
    [User(email=f"many-t{i}-{token}@example.com", name=f"Many T{i}", role="teacher") for i in range(21)]
)
for teacher in teachers:
    klass = Class.objects.create(class_name="Many", teacher=teacher)
    Enrollment.objects.bulk_create([Enrollment(klass=klass, student=s) for s in students])
    start_session(teacher, klass.id)
print(json.dumps({
    "students": [[s.id, issue_token(s.id, s.role)] for s in students],
    "teacher": [teachers[-1].id, issue_token(teachers[-1].id, "teacher")],
}))
"""


async def test_students_in_many_classes_marked_right_after_open_miss_nothing(cluster, sockets):
    """30 students enrolled in 21 classes each (21 group joins before `open`), marked the moment they open."""
    code = f"token = {secrets.token_hex(4)!r}\n" + SEED_MANY_CLASSES
    seeded = json.loads((await asyncio.to_thread(cluster.a.shell, code)).strip().splitlines()[-1])
    students = [Token(user_id, token) for user_id, token in seeded["students"]]
    marker = await sockets(cluster.a, Token(*seeded["teacher"]))
    opened = await asyncio.gather(*(sockets(cluster.b if i % 2 else cluster.a, s) for i, s in enumerate(students)))
    for student in students:
        await marker.send(mark(student.id))
    expected = [marked(student.id, "present") for student in students]
    for ws in opened:
        assert [await recv(ws) for _ in students] == expected


@dataclass
class Token:
    """A user made in the database directly, with a token the workers accept (as `Person`, minus the API)."""

    id: str
    token: str


# --- DONE under a dying worker ---------------------------------------------------------------------------------


@contextlib.contextmanager
def attendance_writes_blocked(db_env: dict[str, str]) -> Iterator[None]:
    """Hold the database so that a DONE claims its session and then waits before committing."""
    url = db_env.get("DATABASE_URL", "")
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(urlsplit(url).path, timeout=30, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
    elif url.startswith(("postgres://", "postgresql://")):
        import psycopg

        with psycopg.connect(url) as conn:
            conn.execute("LOCK TABLE attendance IN ACCESS EXCLUSIVE MODE")
            yield
            conn.rollback()
    else:
        yield  # MongoDB: no lock to hold; the worker is killed as soon as it has claimed (either outcome is checked)


async def test_a_worker_killed_between_claim_and_commit_leaves_a_session_that_recovers(cluster, sockets):
    r = room(cluster, n_students=3)
    teacher_a = await sockets(cluster.a, r.teacher)
    teacher_b = await sockets(cluster.b, r.teacher)
    student_b = await sockets(cluster.b, r.students[0])
    await teacher_a.send(mark(r.students[0].id))
    await teacher_a.send(mark(r.students[1].id, "absent"))
    for _ in range(2):
        await recv(student_b)
    await settle(teacher_a, teacher_b)

    with attendance_writes_blocked(cluster.db_env):
        await teacher_a.send(frame("DONE"))
        # SQL: DONE has taken the session in its transaction and waits on the lock. Standalone MongoDB: no lock to
        # hold, the kill comes as soon as it can (mid-claim, or after the commit: either outcome is checked). A
        # MongoDB replica set: after the commit (SecantusDB, the CI's server, spins on a transaction whose client
        # was killed, where MongoDB aborts it after transactionLifetimeLimitSeconds).
        standalone = os.environ.get("MONGODB_TOPOLOGY") == "standalone"
        await asyncio.sleep(1.0 if "DATABASE_URL" in cluster.db_env else 0.005 if standalone else 1.0)
        cluster.a.process.send_signal(signal.SIGKILL)  # between claim and commit
        cluster.a.process.wait(10)
    killed = time.monotonic()

    # The session is live again with its marks: at once where the transaction died with the worker, after the
    # lease where there is none (standalone MongoDB: worker B's recovery). Or, if the commit made it before the
    # kill, it is ended and its records are there.
    rows = []
    while True:
        await teacher_b.send(frame("TODAY_SUMMARY"))
        reply = await recv(teacher_b)
        if reply["event"] == "DONE":  # the commit made it before the kill: its broadcast
            continue
        rows = wire_attendance_rows(cluster.b, r.class_id)
        if reply == summary(1, 1) or (reply == error(NO_SESSION) and rows):
            break
        assert reply == error(NO_SESSION), reply
        assert time.monotonic() - killed < LEASE_SECONDS + 1.2 * UPKEEP_SECONDS + 5, "the claim was not recovered"
        await asyncio.sleep(0.2)
    if reply == summary(1, 1):
        assert rows == []
        assert await recv(student_b) == summary(1, 1)
        await teacher_b.send(frame("DONE"))
        assert await recv(teacher_b) == done(1, 2, 3)
        assert await recv(student_b) == done(1, 2, 3)
        rows = wire_attendance_rows(cluster.b, r.class_id)
    assert sorted((sid, status) for sid, status, _ in rows) == sorted(
        [(r.students[0].id, "present"), (r.students[1].id, "absent"), (r.students[2].id, "absent")]
    )


# --- sockets follow their account ---------------------------------------------------------------------------------


async def test_a_token_that_expires_while_its_socket_is_open_closes_it(cluster, sockets):
    r = room(cluster)
    token = forge_token(server_jwt_secret(cluster.a), user_id=r.students[0].id, role="student", ttl=2)
    expiring = await sockets(cluster.a, token)
    fine = await sockets(cluster.a, r.students[1])
    assert await recv(expiring, 5) == error(WS_UNAUTHORIZED)
    await expect_close(expiring, CLOSE_POLICY_VIOLATION)
    with cluster.http(cluster.a) as api:
        assert_error(api.get("/auth/me", headers={"Authorization": token}), 401, UNAUTHORIZED)
    await fine.send(frame("MY_ATTENDANCE"))
    assert await recv(fine) == my_status(NOT_YET_UPDATED)


async def test_a_user_deactivated_elsewhere_has_every_socket_closed(cluster, sockets):
    r = room(cluster)
    on_a = await sockets(cluster.a, r.students[0])
    on_b = await sockets(cluster.b, r.students[0])
    other = await sockets(cluster.b, r.students[1])
    code = (
        "from accounts.models import User\n"
        f"user = User.objects.get(pk='{r.students[0].id}')\n"
        "user.is_active = False\n"
        "user.save()"
    )
    await asyncio.to_thread(cluster.a.shell, code)
    for ws in (on_a, on_b):
        assert await recv(ws, 5) == error(WS_UNAUTHORIZED)
        await expect_close(ws, CLOSE_POLICY_VIOLATION)
    await silent(other)


async def test_a_user_removed_behind_the_apps_back_is_found_by_the_account_check(cluster, sockets):
    """A write that sends no notice (raw SQL, a bulk update): the workers' periodic check closes the socket."""
    r = room(cluster)
    ws = await sockets(cluster.b, r.students[0])
    code = f"from accounts.models import User; User.objects.filter(pk='{r.students[0].id}').update(is_active=False)"
    await asyncio.to_thread(cluster.a.shell, code)
    assert await recv(ws, UPKEEP_SECONDS * 1.2 + 5) == error(WS_UNAUTHORIZED)
    await expect_close(ws, CLOSE_POLICY_VIOLATION)


async def test_an_enrolment_made_in_another_process_reaches_open_sockets(cluster, sockets):
    r = room(cluster)
    with cluster.http(cluster.a) as api:
        late = Person(api, "student")
    late_ws = await sockets(cluster.b, late)
    teacher = await sockets(cluster.a, r.teacher)
    code = (
        "from classes.models import Enrollment\n"
        f"Enrollment.objects.create(klass_id='{r.class_id}', student_id='{late.id}')"
    )
    await asyncio.to_thread(cluster.a.shell, code)
    await teacher.send(mark(late.id, "absent"))
    assert await recv(teacher) == marked(late.id, "absent")
    assert await recv(late_ws) == marked(late.id, "absent")

