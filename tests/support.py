"""The one module of test factories and helpers, for every test package (a pytest plugin: the root
conftest registers it, so its fixtures are everywhere and its asserts are rewritten).

- the contract's exact strings, hard-coded on purpose: tests must not follow the code;
- envelope assertions for Django test-client and httpx responses alike (both have `status_code`, `headers`
  and `json()`);
- users, classes and tokens made in-process; people, classes and sessions made over the wire;
- WebSocket helpers for Channels' WebsocketCommunicator (in-process) and the `websockets` client (wire);
- fixtures: users, a fresh live layer, communicators, the wire server and its clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import Future
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.servers import DaphneServer, backend_of, process_cpu_seconds, scratch_database

# --- The contract's exact strings (docs/api.md) ----------------------------------------------------------
INVALID_SCHEMA = "Invalid request schema"
UNAUTHORIZED = "Unauthorized, token missing or invalid"
TEACHER_REQUIRED = "Forbidden, teacher access required"
STUDENT_REQUIRED = "Forbidden, student access required"
NOT_CLASS_TEACHER = "Forbidden, not class teacher"
NOT_ENROLLED = "Forbidden, not enrolled in class"
CLASS_NOT_FOUND = "Class not found"
STUDENT_NOT_FOUND = "Student not found"
SESSION_NOT_FOUND = "Session not found"
EMAIL_EXISTS = "Email already exists"
BAD_CREDENTIALS = "Invalid email or password"
NOT_FOUND = "Not found"
METHOD_NOT_ALLOWED = "Method not allowed"
PAYLOAD_TOO_LARGE = "Payload too large"
INTERNAL_ERROR = "Internal server error"
TOO_MANY_REQUESTS = "Too many requests, try again later"

WS_UNAUTHORIZED = "Unauthorized or invalid token"
INVALID_FORMAT = "Invalid message format"
UNKNOWN_EVENT = "Unknown event"
TEACHER_ONLY = "Forbidden, teacher event only"
STUDENT_ONLY = "Forbidden, student event only"
NO_SESSION = "No active attendance session"
NOT_YET_UPDATED = "not yet updated"
PERSISTED = "Attendance persisted"
PERSIST_FAILED = "Could not persist attendance, please try again"
TOO_MANY_MESSAGES = "Too many messages"
TOO_MANY_CONNECTIONS = "Too many connections"
CHECKIN_NOT_OPEN = "Check-in is not open"
INVALID_CODE = "Invalid or expired code"
ALREADY_MARKED = "Already marked"
TOO_MANY_ATTEMPTS = "Too many attempts"

CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
WS_LIMIT = 64 * 1024
TEACHER_EVENTS = ("ATTENDANCE_MARKED", "TODAY_SUMMARY", "DONE")

PASSWORD = "secret123"
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# A well-formed ObjectId that names nothing.
MISSING_ID = "5f0c0ffee0ddba11deadbeef"
MALFORMED_ID = "not-an-object-id"
MALFORMED_IDS = [
    "not-an-id",
    "5F0C0FFEE0DDBA11DEADBEEF",  # upper case
    "5f0c0ffee0ddba11deadbee",  # 23 chars
    "5f0c0ffee0ddba11deadbeefa",  # 25 chars
    "z" * 24,
]

BIG_BODY = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'  # a valid JSON object just over 1 MiB
DEEP_BODY = b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}"

# How long a socket must stay quiet to count as "received nothing". Only used after a later
# message to someone else has already arrived, so a stray message would have arrived too.
QUIET = 0.4


# --- Envelope assertions --------------------------------------------------------------------------------
def _envelope(response: Any) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    return response.json()


def assert_ok(response: Any, status: int = 200) -> Any:
    """Assert a success envelope with exactly `success` and `data`; return `data`."""
    body = _envelope(response)
    assert response.status_code == status, (response.status_code, body)
    assert set(body) == {"success", "data"}, body
    assert body["success"] is True
    return body["data"]


def assert_error(response: Any, status: int, message: str) -> None:
    """Assert an error envelope with exactly `success: false` and the contract's message."""
    body = _envelope(response)
    actual = (response.status_code, body)
    expected = (status, {"success": False, "error": message})
    assert actual == expected, f"{actual} != {expected}"


def assert_public_user(data: dict[str, Any], *, name: str, email: str, role: str) -> None:
    """A user as the API shows it: exactly these keys, never a password."""
    assert set(data) == {"_id", "name", "email", "role"}, data
    assert OBJECT_ID.match(data["_id"])
    assert (data["name"], data["email"], data["role"]) == (name, email, role)


# --- Users, classes and tokens, in-process -------------------------------------------------------------------
def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{secrets.token_hex(6)}@example.com"


def make_user(role: str = "student", name: str | None = None, *, email: str | None = None) -> Any:
    from accounts.models import User

    return User.objects.create_user(
        email=email or unique_email(role),
        password=PASSWORD,
        name=name or f"{role.title()} {secrets.token_hex(2)}",
        role=role,
    )


async def in_thread(function: Any, *args: Any, **kwargs: Any) -> Any:
    """`function(*args, **kwargs)` on a worker thread, as asyncio.to_thread, with that thread's database connections
    closed after it: on PostgreSQL a connection left open on a thread is never given back to psycopg's pool (each
    test's event loop has threads of its own), and a session of such tests empties the pool."""
    from django.db import connections

    def call() -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    return await asyncio.to_thread(call)


def make_users(role: str, count: int) -> list[Any]:
    return [make_user(role) for _ in range(count)]


def make_class(teacher: Any, students: Iterable[Any] = (), *, name: str | None = None) -> Any:
    """A class of `teacher` with `students` enrolled, in that order."""
    from classes.models import Class, Enrollment

    klass = Class.objects.create(class_name=name or f"Class {secrets.token_hex(2)}", teacher=teacher)
    for student in students:
        Enrollment.objects.create(klass=klass, student=student)
    return klass


def enrolled_ids(klass_or_id: Any) -> list[str]:
    from classes.models import Enrollment

    class_id = getattr(klass_or_id, "id", klass_or_id)
    return list(Enrollment.objects.filter(klass_id=class_id).order_by("id").values_list("student_id", flat=True))


def token_for(user: Any) -> str:
    from accounts.tokens import issue_token

    return issue_token(user.id, user.role)


def auth(user_or_token: Any) -> dict[str, str]:
    """Headers carrying a user's token (spec form: the bare JWT); none for None (an anonymous call)."""
    if user_or_token is None:
        return {}
    token = user_or_token if isinstance(user_or_token, str) else token_for(user_or_token)
    return {"Authorization": token}


def forge_token(
    secret: str, *, user_id: str, role: str = "student", age: int = 0, ttl: int = 3600, **overrides: Any
) -> str:
    """A token signed with `secret`, issued `age` seconds ago and valid for `ttl` seconds from issue; an
    override of None leaves that claim out."""
    issued = datetime.now(tz=UTC) - timedelta(seconds=age)
    claims: dict[str, Any] = {"userId": user_id, "role": role, "iat": issued, "exp": issued + timedelta(seconds=ttl)}
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm="HS256")


# --- In-process requests -------------------------------------------------------------------------------------
def post_json(client: Any, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    return client.post(path, body, content_type="application/json", headers=headers or {})


def post_raw(
    client: Any,
    path: str,
    raw: bytes | str,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Any:
    return client.post(path, raw, content_type=content_type, headers=headers or {})


def count_queries(request: Any) -> int:
    """Run `request()` and return how many database queries it made (asserting it succeeded)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = request()
    assert response.status_code == 200, response.content
    return len(queries)


# --- WebSocket messages ----------------------------------------------------------------------------------------
def error(message: str) -> dict[str, Any]:
    """A server ERROR message, exactly."""
    return {"event": "ERROR", "data": {"message": message}}


def marked(student_id: str, status: str) -> dict[str, Any]:
    return {"event": "ATTENDANCE_MARKED", "data": {"studentId": student_id, "status": status}}


def summary(present: int, absent: int, late: int = 0, excused: int = 0) -> dict[str, Any]:
    counts = {"present": present, "absent": absent, "late": late, "excused": excused}
    return {"event": "TODAY_SUMMARY", "data": {**counts, "total": present + absent + late + excused}}


def my_status(status: str) -> dict[str, Any]:
    return {"event": "MY_ATTENDANCE", "data": {"status": status}}


def done(present: int, absent: int, total: int, late: int = 0, excused: int = 0) -> dict[str, Any]:
    counts = {"present": present, "absent": absent, "late": late, "excused": excused, "total": total}
    return {"event": "DONE", "data": {"message": PERSISTED, **counts}}


def mark_all(status: str, student_ids: list[str]) -> dict[str, Any]:
    return {"event": "MARK_ALL", "data": {"status": status, "studentIds": student_ids}}


def cleared(student_id: str) -> dict[str, Any]:
    return {"event": "ATTENDANCE_CLEARED", "data": {"studentId": student_id}}


def frame(event: str, data: Any = ..., **extra: Any) -> str:
    """A client frame as text; `data` left out when not given."""
    body: dict[str, Any] = {"event": event, **extra}
    if data is not ...:
        body["data"] = data
    return json.dumps(body)


def mark(student_id: str, status: str = "present") -> str:
    """An ATTENDANCE_MARKED frame."""
    return frame("ATTENDANCE_MARKED", {"studentId": student_id, "status": status})


# --- In-process sockets (Channels' WebsocketCommunicator) ---------------------------------------------------------
async def comm_recv(communicator: Any, timeout: float = 5) -> dict[str, Any]:
    return await communicator.receive_json_from(timeout=timeout)


async def comm_ask(communicator: Any, text: str, timeout: float = 5) -> dict[str, Any]:
    await communicator.send_to(text_data=text)
    return await comm_recv(communicator, timeout)


async def comm_silent(communicator: Any, timeout: float = QUIET) -> None:
    assert await communicator.receive_nothing(timeout=timeout), "socket received an unexpected message"


# --- Over the wire: people and classes -------------------------------------------------------------------------
def server_jwt_secret(server: Any) -> str:
    """The key a DaphneServer signs with: JWT_SECRET, defaulting to SECRET_KEY (docs/configuration.md)."""
    return server.env.get("JWT_SECRET") or server.env["SECRET_KEY"]


def server_jwt_ttl(server: Any) -> int:
    return int(server.env.get("JWT_TTL_SECONDS", 86400))


class Person:
    """A signed-up, logged-in user of a wire server."""

    def __init__(self, client: httpx.Client, role: str, name: str | None = None, email: str | None = None) -> None:
        self.email = email or unique_email(role)
        self.password = PASSWORD
        self.name = name or f"{role.title()} {secrets.token_hex(2)}"
        response = client.post(
            "/auth/signup", json={"name": self.name, "email": self.email, "password": self.password, "role": role}
        )
        assert response.status_code == 201, response.text
        self.id: str = response.json()["data"]["_id"]
        self.role = role
        login = client.post("/auth/login", json={"email": self.email, "password": self.password})
        assert login.status_code == 200, login.text
        self.token: str = login.json()["data"]["token"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.token}


def create_class(api: httpx.Client, teacher: Any, name: str | None = None) -> str:
    response = api.post("/class", json={"className": name or f"Class {secrets.token_hex(2)}"}, headers=teacher.headers)
    return assert_ok(response, 201)["_id"]


def enrol(api: httpx.Client, teacher: Any, class_id: str, *students: Any) -> None:
    for student in students:
        response = api.post(f"/class/{class_id}/add-student", json={"studentId": student.id}, headers=teacher.headers)
        assert_ok(response)


def start(api: httpx.Client, teacher: Any, class_id: str) -> str:
    """POST /attendance/start; asserts the exact success shape and returns startedAt."""
    data = assert_ok(api.post("/attendance/start", json={"classId": class_id}, headers=teacher.headers))
    assert data.keys() == {"classId", "startedAt"} and data["classId"] == class_id, data
    assert ISO_MS_Z.match(data["startedAt"]), data
    return data["startedAt"]


def persisted_status(api: httpx.Client, student: Any, class_id: str) -> str | None:
    data = assert_ok(api.get(f"/class/{class_id}/my-attendance", headers=student.headers))
    assert data == {"classId": class_id, "status": data["status"]}, data
    return data["status"]


def big_class(server: Any, teacher: Any, n_students: int) -> tuple[str, list[str]]:
    """A new class of `teacher` on the wire server with `n_students` new students enrolled; the class id and the
    students' ids. The class is made through the API; the students are written in bulk by `manage.py shell`
    with the server's settings (any backend), because a thousand sign-ups and enrolments over HTTP would be
    most of a test's time (minutes on the MongoDB emulator) and are tested elsewhere one by one."""
    created = httpx.post(server.http_url + "/class", json={"className": "Big class"}, headers=teacher.headers)
    class_id = assert_ok(created, 201)["_id"]
    code = f"""
from accounts.models import User
from classes.models import Enrollment
users = [User(email=f"big-{{i}}-{secrets.token_hex(4)}@example.com", name=f"Student {{i:04d}}", role="student",
              password="!") for i in range({n_students})]
User.objects.bulk_create(users)
Enrollment.objects.bulk_create([Enrollment(klass_id={class_id!r}, student=user) for user in users])
print("ids:", *(user.id for user in users))
"""
    output = server.shell(code, timeout=120)
    student_ids = next(line for line in output.splitlines() if line.startswith("ids:")).split()[1:]
    assert len(student_ids) == n_students, output
    return class_id, student_ids


@dataclass
class Classroom:
    """A teacher, one class of theirs and its enrolled students, signed up on the wire server."""

    teacher: Any
    class_id: str
    students: list[Any] = field(default_factory=list)


def new_classroom(api: httpx.Client, n_students: int = 2, teacher: Any = None) -> Classroom:
    """A new class (of a new teacher, unless given) with `n_students` new students enrolled, on the server
    `api` talks to; no session started."""
    teacher = teacher or Person(api, "teacher")
    class_id = create_class(api, teacher)
    students = [Person(api, "student") for _ in range(n_students)]
    enrol(api, teacher, class_id, *students)
    return Classroom(teacher, class_id, students)


def wire_backend(server: Any) -> str:
    """The wire server's database (see `backend_of`)."""
    return backend_of(server.env)


def wire_attendance_rows(server: Any, class_id: str) -> list[tuple[str, str, str]]:
    """(studentId, status, startedAt) records the wire server persisted for a class, read from its database."""
    if wire_backend(server) == "mongodb":
        mongodb_uri = server.env["MONGODB_URI"]
        import pymongo
        from bson import ObjectId

        with pymongo.MongoClient(mongodb_uri, serverSelectionTimeoutMS=5000) as client:
            database = client[urlsplit(mongodb_uri).path.lstrip("/")]
            docs = database["attendance"].find({"classId": ObjectId(class_id)})
            rows = [(str(d["studentId"]), d["status"], d["startedAt"]) for d in docs]
    else:
        url = server.env["DATABASE_URL"]
        sql = 'SELECT "studentId", status, "startedAt" FROM attendance WHERE "classId" = {}'
        if url.startswith("sqlite:"):
            with contextlib.closing(sqlite3.connect(urlsplit(url).path)) as conn:
                rows = conn.execute(sql.format("?"), (class_id,)).fetchall()
        else:
            import psycopg

            with psycopg.connect(url) as conn:
                rows = conn.execute(sql.format("%s"), (class_id,)).fetchall()
    return sorted((student_id, status, str(started_at)) for student_id, status, started_at in rows)


def log_size(server: Any) -> int:
    return server.log_path.stat().st_size


def log_since(server: Any, offset: int) -> str:
    """What the wire server has logged since `offset` (see log_size)."""
    with open(server.log_path, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


# --- Over the wire: sockets (the `websockets` client) ---------------------------------------------------------------
async def recv(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    """The next server message, decoded; fails after `timeout` instead of hanging."""
    raw = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(raw, str), f"expected a text frame, got {raw!r}"
    return json.loads(raw)


async def ask(ws: ClientConnection, text: str | bytes, timeout: float = 5) -> dict[str, Any]:
    """Send one frame and return the next message."""
    await ws.send(text)
    return await recv(ws, timeout)


async def silent(*sockets: ClientConnection, timeout: float = QUIET) -> None:
    """Assert that none of the sockets receives anything for `timeout` seconds."""

    async def one(ws: ClientConnection) -> None:
        try:
            raw = await asyncio.wait_for(ws.recv(), timeout)
        except TimeoutError:
            return
        raise AssertionError(f"socket received an unexpected message: {raw!r}")

    await asyncio.gather(*(one(ws) for ws in sockets))


async def drain(ws: ClientConnection, quiet: float = QUIET, timeout: float = 5) -> list[dict[str, Any]]:
    """Every message the socket receives until it has been quiet for `quiet` seconds (at least one)."""
    messages = [await recv(ws, timeout)]
    while True:
        try:
            messages.append(await recv(ws, quiet))
        except TimeoutError:
            return messages


async def expect_close(ws: ClientConnection, code: int, timeout: float = 5) -> None:
    """The server closes the socket with `code` (and sends nothing before closing)."""
    with pytest.raises(ConnectionClosed) as closed:
        raw = await asyncio.wait_for(ws.recv(), timeout)
        raise AssertionError(f"expected close {code}, got message {raw!r}")
    assert closed.value.rcvd is not None, "connection dropped without a close frame"
    assert closed.value.rcvd.code == code


# --- Limits against abuse -------------------------------------------------------------------------------------------
def assert_too_many_requests(response: Any) -> int:
    """A 429 in the envelope with a Retry-After of 1–900 whole seconds (docs/production.md); returns Retry-After."""
    assert_error(response, 429, TOO_MANY_REQUESTS)
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 900, retry_after
    return int(retry_after)


@contextlib.contextmanager
def own_wire_server(tmp_dir: Any, env: dict[str, str] | None = None) -> Iterator[DaphneServer]:
    """A wire server of its own (a scratch database, `env` over the defaults), for tests that must not share
    the session's server: e.g. the failed-login limits, which count per client address."""
    with scratch_database(tmp_dir) as db_env:
        server = DaphneServer({**db_env, **(env or {})}, log_path=tmp_dir / f"daphne-{secrets.token_hex(3)}.log")
        server.migrate()
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def wire_servers(tmp_dir: Any, count: int, env: dict[str, str]) -> Iterator[list[DaphneServer]]:
    """`count` wire servers sharing one scratch database of the run's backend (`env` over the defaults, e.g. a
    shared REDIS_URL); migrated once, stopped at the end. A test may kill and start them again."""
    with contextlib.ExitStack() as stack:
        db_env = stack.enter_context(scratch_database(tmp_dir))
        started: list[DaphneServer] = []
        for _ in range(count):
            server = DaphneServer({**db_env, **env}, log_path=tmp_dir / f"daphne-{secrets.token_hex(3)}.log")
            if not started:
                server.migrate()
            stack.callback(server.stop)
            started.append(server.start())
        yield started


def server_cpu_seconds(server: Any) -> float:
    """CPU time (user + system) the wire server's process has used so far."""
    return process_cpu_seconds(server.process.pid)


UNLIMITED = {
    "LOGIN_FAILURES_PER_EMAIL": "0",
    "LOGIN_FAILURES_PER_IP": "0",
    "WS_RATE_BURST": "0",
    "WS_RATE_PER_SECOND": "0",
    "WS_MAX_SOCKETS_PER_USER": "0",
    "WS_MAX_SOCKETS_PER_IP": "0",
    "SIGNUPS_PER_IP": "0",
    "REQUEST_DEADLINE_SECONDS": "0",
}


# --- One scenario, two ways: in-process (Django's test client) or over the wire (httpx + a real Daphne) ----------
class Site:
    """What a scenario needs from the system under test, the same in-process and over the wire.

    People are users (in-process: User rows; wire: signed-up Persons); both have `id`, `name`, `email` and
    `role`. `request` returns the Django test client's or httpx's response: both have `status_code`,
    `headers`, `json()`, `content` and `text`, so the envelope assertions serve both. A body is JSON
    (`body`) or bytes as sent (`raw`, with `content_type`; None sends no Content-Type)."""

    mode: str

    def request(
        self,
        method: str,
        path: str,
        who: Any = None,
        params: dict[str, str] | None = None,
        *,
        body: Any = ...,
        raw: bytes | str | None = None,
        content_type: str | None = "application/json",
        headers: dict[str, str] | None = None,
    ) -> Any:
        if raw is None and body is not ...:
            raw = json.dumps(body)
        content = raw.encode() if isinstance(raw, str) else raw
        sent = {**self.headers(who), **(headers or {})}
        if content is not None and content_type is not None:
            sent["Content-Type"] = content_type
        return self._send(method, path + _query(params), content, sent)

    def _send(self, method: str, url: str, content: bytes | None, headers: dict[str, str]) -> Any:
        raise NotImplementedError

    def get(self, path: str, who: Any = None, **params: str) -> Any:
        return self.request("GET", path, who, params)

    def post(self, path: str, body: Any = ..., who: Any = None, **options: Any) -> Any:
        """POST `body` as JSON (or `raw=` bytes with `content_type=`, `headers=` beside the token's)."""
        return self.request("POST", path, who, body=body, **options)

    def person(self, role: str, name: str | None = None, email: str | None = None) -> Any:
        raise NotImplementedError

    def token(self, who: Any) -> str:
        """A person's token, as login issued it."""
        raise NotImplementedError

    @property
    def jwt_secret(self) -> str:
        """The key the system signs its tokens with (to forge tokens it must accept or refuse)."""
        raise NotImplementedError

    @property
    def jwt_ttl(self) -> int:
        raise NotImplementedError

    def delete_user(self, who: Any) -> None:
        """Delete a person's account behind the API's back (there is no delete route)."""
        raise NotImplementedError

    def enrolled(self, teacher: Any, class_id: str) -> list[str]:
        """The class's enrolled student ids, in enrolment order (in-process: read from the database itself)."""
        raise NotImplementedError

    def new_class(self, teacher: Any, students: Iterable[Any] = (), name: str | None = None) -> str:
        raise NotImplementedError

    def enrol(self, teacher: Any, class_id: str, *students: Any) -> None:
        raise NotImplementedError

    def live(self, teacher: Any, class_id: str, marks: dict[str, str] | None = None) -> str:
        """Start the class's session and mark `marks` (studentId → status); its startedAt."""
        raise NotImplementedError

    def done(self, teacher: Any) -> dict[str, Any]:
        """DONE: persist the teacher's live session; the summary."""
        raise NotImplementedError

    def session(self, teacher: Any, class_id: str, marks: dict[str, str] | None = None) -> str:
        """A whole session, started, marked and persisted; its startedAt."""
        started_at = self.live(teacher, class_id, marks)
        self.done(teacher)
        return started_at

    @staticmethod
    def headers(who: Any) -> dict[str, str]:
        """A person's token header (a str is taken as the header's value itself; None: anonymous)."""
        if who is None or isinstance(who, str):
            return auth(who)
        return who.headers if isinstance(who, Person) else auth(who)


class LocalSite(Site):
    """In-process: the test client and the services themselves (start, mark, persist as DONE does)."""

    mode = "local"

    def __init__(self, client: Any) -> None:
        self.client = client
        self._last_start = ""

    def _send(self, method: str, url: str, content: bytes | None, headers: dict[str, str]) -> Any:
        # The test client takes the content type apart from the headers; "" stands for no Content-Type.
        headers = dict(headers)
        content_type = headers.pop("Content-Type", "")
        return self.client.generic(method, url, data=content or b"", content_type=content_type, headers=headers)

    def person(self, role: str, name: str | None = None, email: str | None = None) -> Any:
        return make_user(role, name, email=email)

    def token(self, who: Any) -> str:
        return token_for(who)

    @property
    def jwt_secret(self) -> str:
        from django.conf import settings

        return settings.JWT_SECRET

    @property
    def jwt_ttl(self) -> int:
        from django.conf import settings

        return settings.JWT_TTL_SECONDS

    def delete_user(self, who: Any) -> None:
        from accounts.models import User

        User.objects.filter(pk=who.id).delete()

    def enrolled(self, teacher: Any, class_id: str) -> list[str]:
        return enrolled_ids(class_id)

    def new_class(self, teacher: Any, students: Iterable[Any] = (), name: str | None = None) -> str:
        return make_class(teacher, students, name=name).id

    def enrol(self, teacher: Any, class_id: str, *students: Any) -> None:
        from classes.models import Enrollment

        for student in students:
            Enrollment.objects.get_or_create(klass_id=class_id, student=student)

    def live(self, teacher: Any, class_id: str, marks: dict[str, str] | None = None) -> str:
        from live import commands

        while commands.iso_now() <= self._last_start:  # startedAt has milliseconds: one session per ms
            time.sleep(0.001)
        session = commands.start_session(teacher, class_id)
        self._last_start = session.started_at
        for student_id, status in (marks or {}).items():
            commands.mark_attendance(session, student_id, status, teacher.id)
        return session.started_at

    def done(self, teacher: Any) -> dict[str, Any]:
        from live import commands, selectors

        # What DONE does, on this thread (the test's transaction).
        return dict(commands.finish_session(selectors.active_session(teacher.id)))


def persist_session(teacher: Any, class_id: str, started_at: str, marks: dict[str, str] | None = None) -> Any:
    """A session of the class started at `started_at` (ISO, ms, Z) with these marks, persisted as DONE does;
    returns DONE's summary."""
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime

    from live import commands
    from live.models import AttendanceSession
    from live.selectors import Session

    row = AttendanceSession.objects.create(
        klass_id=class_id,
        teacher_id=teacher.id,
        started_at=parse_datetime(started_at),
        updated_at=timezone.now(),
        marks={sid: {"status": status, "at": started_at, "by": teacher.id, "source": "teacher"}
               for sid, status in (marks or {}).items()},
    )
    return commands.finish_session(Session.from_row(row))


class WireSite(Site):
    """Over the wire: httpx to a real Daphne, and its WebSocket for marks and DONE."""

    mode = "wire"

    def __init__(self, api: httpx.Client, server: Any) -> None:
        self.api = api
        self.server = server

    def _send(self, method: str, url: str, content: bytes | None, headers: dict[str, str]) -> Any:
        return self.api.request(method, url, content=content, headers=headers)

    def person(self, role: str, name: str | None = None, email: str | None = None) -> Any:
        return Person(self.api, role, name, email)

    def token(self, who: Any) -> str:
        return who.token

    @property
    def jwt_secret(self) -> str:
        return server_jwt_secret(self.server)

    @property
    def jwt_ttl(self) -> int:
        return server_jwt_ttl(self.server)

    def delete_user(self, who: Any) -> None:
        self.server.shell(f"from accounts.models import User; User.objects.filter(pk={who.id!r}).delete()")

    def enrolled(self, teacher: Any, class_id: str) -> list[str]:
        return [student["_id"] for student in assert_ok(self.get(f"/class/{class_id}", teacher))["students"]]

    def new_class(self, teacher: Any, students: Iterable[Any] = (), name: str | None = None) -> str:
        class_id = create_class(self.api, teacher, name)
        enrol(self.api, teacher, class_id, *students)
        return class_id

    def enrol(self, teacher: Any, class_id: str, *students: Any) -> None:
        enrol(self.api, teacher, class_id, *students)

    def _socket(self, teacher: Any) -> Any:
        from websockets.sync.client import connect as connect_sync

        return connect_sync(f"{self.server.ws_url}?token={teacher.token}", open_timeout=5, close_timeout=2)

    def live(self, teacher: Any, class_id: str, marks: dict[str, str] | None = None) -> str:
        started_at = start(self.api, teacher, class_id)
        if marks:
            with self._socket(teacher) as ws:
                for student_id, status in marks.items():
                    ws.send(mark(student_id, status))
                    assert json.loads(ws.recv(timeout=5)) == marked(student_id, status)
        return started_at

    def done(self, teacher: Any) -> dict[str, Any]:
        with self._socket(teacher) as ws:
            ws.send(frame("DONE"))
            reply = json.loads(ws.recv(timeout=10))
        assert reply["event"] == "DONE", reply
        return reply["data"]


def _query(params: dict[str, str] | None) -> str:
    return "?" + urlencode(params) if params else ""


# --- Fixtures ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def unlimited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    """A wire server with every limit set to 0 (off)."""
    with own_wire_server(tmp_path_factory.mktemp("unlimited"), UNLIMITED) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_limits_cache(settings: Any) -> None:
    """Every in-process test starts with no failed login counted: a local-memory limits cache of its own
    (never the shared Redis, even when REDIS_URL is set)."""
    settings.CACHES = {
        **settings.CACHES,
        settings.LIMITS_CACHE: {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"test-limits-{secrets.token_hex(4)}",
        },
    }


@pytest.fixture
def teacher(db: Any) -> Any:
    return make_user("teacher", name="Tina Teacher")


@pytest.fixture
def other_teacher(db: Any) -> Any:
    return make_user("teacher", name="Oscar Other")


@pytest.fixture
def student(db: Any) -> Any:
    return make_user("student", name="Sam Student")


@pytest.fixture
def superuser(db: Any) -> Any:
    from accounts.models import User

    return User.objects.create_superuser(email="admin@example.com", password=PASSWORD, name="Ada Admin")


@pytest.fixture
def admin_site_client(client: Any, superuser: Any) -> Any:
    """The test client logged in to the Django admin as a superuser."""
    client.force_login(superuser)
    return client


@pytest.fixture
def bcrypt_computations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords bcrypt computed a hash for, in order: a sign-up's hash, a login's check (Django's verify
    hashes again to compare) and the dummy hash of an unknown email alike — what the limits must spare."""
    from accounts.hashers import ConfigurableBCryptSHA256PasswordHasher

    calls: list[str] = []
    encode = ConfigurableBCryptSHA256PasswordHasher.encode

    def counting(self: Any, password: str, salt: str) -> str:
        calls.append(password)
        return encode(self, password, salt)

    monkeypatch.setattr(ConfigurableBCryptSHA256PasswordHasher, "encode", counting)
    return calls


@pytest.fixture
def fresh_live(settings: Any) -> Iterator[None]:
    """An empty in-memory channel layer for this test alone (sessions are in the test's database).

    The channel layer is cached; setting CHANNEL_LAYERS makes Channels drop its cached layers (and again when
    restored)."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "live.layers.InMemoryChannelLayer"}}
    yield


@pytest.fixture
async def communicators(fresh_live: None) -> AsyncIterator[Any]:
    """Open in-process sockets: `await open_(token)` → a connected WebsocketCommunicator.

    Every socket is disconnected at the end of the test."""
    from channels.testing import WebsocketCommunicator

    from attendance_site.asgi import application

    opened: list[WebsocketCommunicator] = []

    async def open_(token: str | None, *, expect_accept: bool = True) -> WebsocketCommunicator:
        path = "/ws" if token is None else f"/ws?token={token}"
        communicator = WebsocketCommunicator(application, path)
        opened.append(communicator)
        connected, _ = await communicator.connect(timeout=5)
        assert connected is expect_accept
        return communicator

    yield open_
    # Close what is still open. A consumer that fails while closing is the subject of its own test
    # (test_consumer.py::test_closing_a_socket_is_clean), so it is not reported again for every test.
    for communicator in opened:
        with contextlib.suppress(Exception, asyncio.CancelledError):  # a test may have cancelled it
            await communicator.disconnect(timeout=5)


@pytest.fixture(scope="session")
def wire_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    """A real Daphne process serving the whole app, on a scratch database.

    It runs with the default limits (docs/production.md "Limits against abuse") and every test reaches it from
    127.0.0.1: keep failed logins to a few per test (50 in 15 minutes lock the address out for the rest of
    the session); tests of the limits use `own_wire_server`."""
    with own_wire_server(tmp_path_factory.mktemp("wire")) as server:
        yield server


@pytest.fixture
def api(wire_server: DaphneServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=wire_server.http_url, timeout=10.0) as client:
        yield client


@pytest.fixture
def make_person(api: httpx.Client) -> Any:
    def make(role: str, name: str | None = None) -> Person:
        return Person(api, role, name)

    return make


@pytest.fixture
def classroom(api: httpx.Client) -> Any:
    """`classroom(n)` → a fresh Classroom with n enrolled students (no session started)."""

    def make(n_students: int = 2, teacher: Any = None) -> Classroom:
        return new_classroom(api, n_students, teacher)

    return make


@pytest.fixture
async def wire_sockets() -> AsyncIterator[Any]:
    """`await wire_sockets(server, who, **options)` → an open websockets connection to any wire server, with
    `who`'s token (anything with a `token`, or the token itself; None: no token); `options` go to websockets'
    `connect` (e.g. `sock`, `max_queue`). No client-side size limit: the server's is under test.

    Every socket is closed at the end of the test."""
    async with AsyncExitStack() as stack:

        async def open_(server: Any, who: Any, **options: Any) -> ClientConnection:
            token = getattr(who, "token", who)
            url = server.ws_url if token is None else f"{server.ws_url}?token={token}"
            return await stack.enter_async_context(
                connect(url, open_timeout=10, close_timeout=2, max_size=None, **options)
            )

        yield open_


@pytest.fixture
def ws_open(wire_server: Any, wire_sockets: Any) -> Any:
    """`await ws_open(token)` → an open websockets connection to the session's wire server (None: no token)."""

    async def open_(token: str | None) -> ClientConnection:
        return await wire_sockets(wire_server, token)

    return open_


# The marks reach the tests: pytest-django sets up the test database only for tests marked django_db.
@pytest.fixture(
    params=[pytest.param("local", marks=pytest.mark.django_db), pytest.param("wire", marks=pytest.mark.wire)]
)
def site(request: pytest.FixtureRequest) -> Site:
    """The system under test, in-process and then over the wire (a scenario written once, run both ways)."""
    if request.param == "local":
        request.getfixturevalue("fresh_live")
        return LocalSite(request.getfixturevalue("client"))
    return WireSite(request.getfixturevalue("api"), request.getfixturevalue("wire_server"))


# --- One socket scenario, two ways: Channels' communicator in-process, or a real client over the wire ----------
class LocalSocket:
    """A WebsocketCommunicator behind the socket interface that WireSocket shares."""

    def __init__(self, communicator: Any) -> None:
        self.communicator = communicator

    async def send(self, text: str | bytes) -> None:
        if isinstance(text, bytes):
            await self.communicator.send_to(bytes_data=text)
        else:  # send_to refuses an empty text frame; the consumer sees this the same way
            await self.communicator.send_input({"type": "websocket.receive", "text": text})

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        return await comm_recv(self.communicator, timeout)

    async def ask(self, text: str | bytes, timeout: float = 5) -> dict[str, Any]:
        await self.send(text)
        return await self.recv(timeout)

    async def silent(self, timeout: float = QUIET) -> None:
        await comm_silent(self.communicator, timeout)

    async def drain(self, quiet: float = QUIET, timeout: float = 5) -> list[dict[str, Any]]:
        messages = [await self.recv(timeout)]
        while not await self.communicator.receive_nothing(timeout=quiet):
            messages.append(await self.recv(timeout))
        return messages

    async def expect_close(self, code: int, timeout: float = 5) -> None:
        """The consumer closes with `code`, sending nothing before."""
        output = await self.communicator.receive_output(timeout=timeout)
        assert output == {"type": "websocket.close", "code": code}, output

    async def close(self) -> None:
        await self.communicator.disconnect(timeout=5)  # raises if the consumer fails while closing


class WireSocket:
    """A `websockets` client connection to the wire server."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, text: str | bytes) -> None:
        await self.ws.send(text)

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        return await recv(self.ws, timeout)

    async def ask(self, text: str | bytes, timeout: float = 5) -> dict[str, Any]:
        return await ask(self.ws, text, timeout)

    async def silent(self, timeout: float = QUIET) -> None:
        await silent(self.ws, timeout=timeout)

    async def drain(self, quiet: float = QUIET, timeout: float = 5) -> list[dict[str, Any]]:
        return await drain(self.ws, quiet, timeout)

    async def expect_close(self, code: int, timeout: float = 5) -> None:
        await expect_close(self.ws, code, timeout)

    async def close(self) -> None:
        await self.ws.close()


Socket = LocalSocket | WireSocket


async def recv_all(expected: dict[str, Any], *sockets: Socket | ClientConnection) -> None:
    """Each socket's next message is `expected` (the socket interface's, or plain `websockets` connections)."""
    got = await asyncio.gather(*(recv(ws) if isinstance(ws, ClientConnection) else ws.recv() for ws in sockets))
    assert got == [expected] * len(sockets)


async def silent_all(*sockets: Socket, timeout: float = QUIET) -> None:
    """None of the sockets receives anything for `timeout` seconds."""
    await asyncio.gather(*(ws.silent(timeout) for ws in sockets))


class LiveSite:
    """What a socket scenario needs, in-process (a Site's people and sessions, and communicators) or over the
    wire (the session's wire server and real WebSocket clients). Everything that may touch the database is
    awaited: in-process it runs on a database thread, as the consumer's own work does."""

    def __init__(self, site: Site, opener: Any, server: Any = None) -> None:
        self.site = site
        self.mode = site.mode
        self._open = opener
        self.server = server

    async def _run(self, function: Any, *args: Any) -> Any:
        if self.mode == "local":
            from channels.db import database_sync_to_async

            return await database_sync_to_async(function)(*args)
        return function(*args)

    async def open(self, who: Any) -> Socket:
        """A socket connected with `who`'s token (a str is the token itself; None: no token at all)."""
        token = who if who is None or isinstance(who, str) else self.token(who)
        if self.mode == "local":
            return LocalSocket(await self._open(token))
        return WireSocket(await self._open(token))

    def token(self, who: Any) -> str:
        return self.site.token(who)

    @property
    def jwt_secret(self) -> str:
        return self.site.jwt_secret

    async def person(self, role: str) -> Any:
        return await self._run(self.site.person, role)

    async def new_class(self, teacher: Any, students: Iterable[Any] = ()) -> str:
        return await self._run(self.site.new_class, teacher, list(students))

    async def enrol(self, teacher: Any, class_id: str, *students: Any) -> None:
        await self._run(self.site.enrol, teacher, class_id, *students)

    async def classroom(self, n_students: int = 2) -> Classroom:
        """A new teacher, a class of theirs and `n_students` new students enrolled (no session started)."""
        teacher = await self.person("teacher")
        students = [await self.person("student") for _ in range(n_students)]
        return Classroom(teacher, await self.new_class(teacher, students), students)

    async def start(self, teacher: Any, class_id: str) -> str:
        """Start (or restart) the class's session; its startedAt."""
        return await self._run(self.site.live, teacher, class_id)

    async def persisted_status(self, student: Any, class_id: str) -> str | None:
        """What GET /class/:id/my-attendance answers the student."""
        response = await self._run(self.site.get, f"/class/{class_id}/my-attendance", student)
        data = assert_ok(response)
        assert data == {"classId": class_id, "status": data["status"]}, data
        return data["status"]

    async def attendance_rows(self, class_id: str) -> list[tuple[str, str, str]]:
        """(studentId, status, startedAt) records persisted for the class, read from the database."""
        if self.mode == "wire":
            return wire_attendance_rows(self.server, class_id)

        def rows() -> list[tuple[str, str, str]]:
            from live.models import Attendance

            records = Attendance.objects.filter(klass_id=class_id).values_list("student_id", "status", "started_at")
            return sorted((student_id, status, str(started_at)) for student_id, status, started_at in records)

        return await self._run(rows)


@pytest.fixture(
    params=[
        pytest.param("local", marks=pytest.mark.django_db(transaction=True)),
        pytest.param("wire", marks=pytest.mark.wire),
    ]
)
def live_site(request: pytest.FixtureRequest) -> LiveSite:
    """The live WebSocket under test, in-process and then over the wire (a socket scenario written once).
    In-process the sockets' work runs on other threads, so the database is a transactional one."""
    if request.param == "local":
        request.getfixturevalue("fresh_live")
        site: Site = LocalSite(request.getfixturevalue("client"))
        return LiveSite(site, request.getfixturevalue("communicators"))
    server = request.getfixturevalue("wire_server")
    site = WireSite(request.getfixturevalue("api"), server)
    return LiveSite(site, request.getfixturevalue("ws_open"), server)


@pytest.fixture
async def live_room(live_site: LiveSite) -> Any:
    """A started session of a class of three students, the teacher's and the students' sockets open."""
    room = await live_site.classroom(3)
    await live_site.start(room.teacher, room.class_id)
    room.teacher_ws = await live_site.open(room.teacher)
    room.student_ws = [await live_site.open(s) for s in room.students]
    return room


def threads_can_race() -> bool:
    """Whether two threads' transactions can run at once on the test database."""
    from django.db import connection

    from live.db import pool_size

    return pool_size() > 1 or connection.vendor != "sqlite"


# A benchmark's smoke run (tests/test_bench_*.py): over the wire, once (the SQLite pass: a bench has its own
# SQLite file whatever the run's backend), where Node can run the reference (bench/reference-node).
bench_smoke = [
    pytest.mark.wire,
    pytest.mark.skipif(backend_of(os.environ) != "sqlite",
                       reason="a bench has its own SQLite file whatever the backend: run once, in the SQLite pass"),
    pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                       reason="node/npm not installed: the reference (bench/reference-node) runs on Node 20"),
]


# In-memory SQLite (the in-process tests') fails a second writer at once ("database table is locked", see
# live.db.pool_size): tests marked so run on PostgreSQL and MongoDB.
# (A string condition: evaluated at set-up, once Django is configured, in the test module's namespace.)
needs_threads = pytest.mark.skipif(
    "not __import__('tests.support').support.threads_can_race()",
    reason="in-memory SQLite: one writer at a time",
)


class _InlineOnMemorySQLite:
    """An executor that runs what it is given at once, on the submitting thread, when the test database is the
    in-memory SQLite (see at_risk_notices_inline_on_memory_sqlite); elsewhere the real one."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def submit(self, fn: Any, /, *args: Any) -> Future[Any]:
        if threads_can_race():  # asked now: the test database is set up by the time a DONE commits
            return self.real.submit(fn, *args)
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as error:  # handed to the future, as a pool would
            future.set_exception(error)
        return future


@pytest.fixture(autouse=True)
def at_risk_notices_inline_on_memory_sqlite(request: pytest.FixtureRequest) -> Iterator[None]:
    """On the in-process tests' in-memory SQLite, at-risk notices are sent on the thread whose DONE committed: the
    mail thread's reads beside the test's next write fail one of them ("database table is locked": table locks,
    no waiting). Tests marked `mail_thread` (live/tests/test_alerts.py, which waits for each DONE's notices) keep
    the real thread; so do PostgreSQL and MongoDB, where threads do not collide."""
    if request.node.get_closest_marker("mail_thread"):
        yield
        return
    from live import alerts

    real = alerts._executor
    alerts._executor = _InlineOnMemorySQLite(real)  # type: ignore[assignment]
    try:
        yield
    finally:
        alerts._executor = real


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """Before a test's fixtures are torn down (the test database flushed among them): the at-risk notices its
    DONEs queued are sent. Their thread reads the database; on the in-process tests' in-memory SQLite, a read
    beside the flush fails it ("database table is locked")."""
    from live import alerts

    try:
        alerts.wait_for_notices()
    except Exception:  # a notice's own failure is its test's business, not every test's teardown
        pass
    yield
