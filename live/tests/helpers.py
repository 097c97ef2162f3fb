"""Shared helpers for the live app's tests: the contract's strings, in-process state and users,
and the over-the-wire HTTP and WebSocket clients.

Fixtures are defined here and re-exported by live/tests/conftest.py. None of them is autouse, so
they touch no other test module of this folder unless it asks for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from channels.testing import WebsocketCommunicator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

# --- The contract's exact strings (DESIGN.md). Hard-coded on purpose: tests must not follow the code.
WS_UNAUTHORIZED = "Unauthorized or invalid token"
INVALID_FORMAT = "Invalid message format"
UNKNOWN_EVENT = "Unknown event"
TEACHER_ONLY = "Forbidden, teacher event only"
STUDENT_ONLY = "Forbidden, student event only"
NO_SESSION = "No active attendance session"
STUDENT_NOT_FOUND = "Student not found"
CLASS_NOT_FOUND = "Class not found"
NOT_CLASS_TEACHER = "Forbidden, not class teacher"
NOT_ENROLLED = "Forbidden, not enrolled in class"
STUDENT_REQUIRED = "Forbidden, student access required"
TEACHER_REQUIRED = "Forbidden, teacher access required"
HTTP_UNAUTHORIZED = "Unauthorized, token missing or invalid"
INVALID_SCHEMA = "Invalid request schema"
METHOD_NOT_ALLOWED = "Method not allowed"
NOT_YET_UPDATED = "not yet updated"
PERSISTED = "Attendance persisted"

CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
WS_LIMIT = 64 * 1024

ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MISSING_ID = "5f0c0ffee0ddba11deadbeef"  # well-formed ObjectId naming nothing
MALFORMED_ID = "not-an-object-id"

TEACHER_EVENTS = ("ATTENDANCE_MARKED", "TODAY_SUMMARY", "DONE")

# How long a socket must stay quiet to count as "received nothing". Only used after a later
# message to someone else has already arrived, so a stray message would have arrived too.
QUIET = 0.4


def error(message: str) -> dict[str, Any]:
    """A server ERROR message, exactly."""
    return {"event": "ERROR", "data": {"message": message}}


def marked(student_id: str, status: str) -> dict[str, Any]:
    return {"event": "ATTENDANCE_MARKED", "data": {"studentId": student_id, "status": status}}


def summary(present: int, absent: int) -> dict[str, Any]:
    return {"event": "TODAY_SUMMARY", "data": {"present": present, "absent": absent, "total": present + absent}}


def my_status(status: str) -> dict[str, Any]:
    return {"event": "MY_ATTENDANCE", "data": {"status": status}}


def done(present: int, absent: int, total: int) -> dict[str, Any]:
    return {"event": "DONE", "data": {"message": PERSISTED, "present": present, "absent": absent, "total": total}}


def frame(event: str, data: Any = ..., **extra: Any) -> str:
    """A client frame as text; `data` left out when not given."""
    body: dict[str, Any] = {"event": event, **extra}
    if data is not ...:
        body["data"] = data
    return json.dumps(body)


def mark(student_id: str, status: str = "present") -> str:
    """An ATTENDANCE_MARKED frame."""
    return frame("ATTENDANCE_MARKED", {"studentId": student_id, "status": status})


def sign(secret: str, user_id: str, role: str, *, expires_in: int = 3600, **claims: Any) -> str:
    """An HS256 token like the server's, for ids or lifetimes the API would not issue."""
    now = datetime.now(tz=UTC)
    payload = {"userId": user_id, "role": role, "iat": now, "exp": now + timedelta(seconds=expires_in), **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


# --- In-process: fresh live state, users, communicators -----------------------------------------


@pytest.fixture
def fresh_live(settings: Any) -> Iterator[None]:
    """An empty in-memory session store and channel layer for this test alone.

    The store is a process-wide singleton (functools.cache) and the channel layer is cached too;
    setting CHANNEL_LAYERS makes Channels drop its cached layers (and again when restored)."""
    from live.store import get_session_store

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.SESSION_STORE = "live.store.InMemorySessionStore"
    get_session_store.cache_clear()
    yield
    get_session_store.cache_clear()


def unique_email(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(5)}@example.com"


def make_user(role: str, name: str | None = None) -> Any:
    from accounts.models import User

    return User.objects.create_user(
        email=unique_email(role), password=None, name=name or f"{role} {secrets.token_hex(2)}", role=role
    )


def make_class(teacher: Any, students: Iterable[Any] = ()) -> Any:
    from classes.models import Class, Enrollment

    klass = Class.objects.create(class_name=f"Class {secrets.token_hex(2)}", teacher=teacher)
    Enrollment.objects.bulk_create([Enrollment(klass=klass, student=s) for s in students])
    return klass


def token_for(user: Any) -> str:
    from accounts.tokens import issue_token

    return issue_token(user.id, user.role)


@pytest.fixture
async def communicators(fresh_live: None) -> AsyncIterator[Any]:
    """Open in-process sockets: `await open_(token)` → a connected WebsocketCommunicator.

    Every socket is disconnected at the end of the test."""
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
        with contextlib.suppress(Exception):
            await communicator.disconnect(timeout=5)


async def comm_recv(communicator: WebsocketCommunicator, timeout: float = 5) -> dict[str, Any]:
    return await communicator.receive_json_from(timeout=timeout)


async def comm_ask(communicator: WebsocketCommunicator, text: str, timeout: float = 5) -> dict[str, Any]:
    await communicator.send_to(text_data=text)
    return await comm_recv(communicator, timeout)


async def comm_silent(communicator: WebsocketCommunicator, timeout: float = QUIET) -> None:
    assert await communicator.receive_nothing(timeout=timeout), "socket received an unexpected message"


# --- Over the wire: HTTP ------------------------------------------------------------------------------


def ok_data(response: httpx.Response, status: int = 200) -> Any:
    body = response.json()
    assert response.status_code == status, body
    assert body.keys() == {"success", "data"} and body["success"] is True, body
    return body["data"]


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert (response.status_code, response.json()) == (status, {"success": False, "error": message})


def create_class(api: httpx.Client, teacher: Any) -> str:
    response = api.post("/class", json={"className": f"Class {secrets.token_hex(2)}"}, headers=teacher.headers)
    return ok_data(response, 201)["_id"]


def enrol(api: httpx.Client, teacher: Any, class_id: str, *students: Any) -> None:
    for student in students:
        response = api.post(f"/class/{class_id}/add-student", json={"studentId": student.id}, headers=teacher.headers)
        ok_data(response)


def start(api: httpx.Client, teacher: Any, class_id: str) -> str:
    """POST /attendance/start; asserts the exact success shape and returns startedAt."""
    data = ok_data(api.post("/attendance/start", json={"classId": class_id}, headers=teacher.headers))
    assert data.keys() == {"classId", "startedAt"} and data["classId"] == class_id, data
    assert ISO_MS_Z.match(data["startedAt"]), data
    return data["startedAt"]


def persisted_status(api: httpx.Client, student: Any, class_id: str) -> str | None:
    data = ok_data(api.get(f"/class/{class_id}/my-attendance", headers=student.headers))
    assert data == {"classId": class_id, "status": data["status"]}, data
    return data["status"]


@dataclass
class Classroom:
    """A teacher, one class of theirs and its enrolled students, signed up on the wire server."""

    teacher: Any
    class_id: str
    students: list[Any] = field(default_factory=list)


@pytest.fixture
def classroom(api: httpx.Client, make_person: Any) -> Any:
    """`classroom(n)` → a fresh Classroom with n enrolled students (no session started)."""

    def make(n_students: int = 2, teacher: Any = None) -> Classroom:
        teacher = teacher or make_person("teacher")
        class_id = create_class(api, teacher)
        students = [make_person("student") for _ in range(n_students)]
        enrol(api, teacher, class_id, *students)
        return Classroom(teacher, class_id, students)

    return make


def wire_jwt_secret(server: Any) -> str:
    """The key the wire server signs with: JWT_SECRET, defaulting to SECRET_KEY (DESIGN.md)."""
    return server.env.get("JWT_SECRET") or server.env["SECRET_KEY"]


def wire_attendance_rows(server: Any, class_id: str) -> list[tuple[str, str, str]]:
    """(studentId, status, startedAt) records the wire server persisted for a class, read from its database."""
    mongodb_uri = server.env.get("MONGODB_URI")
    if mongodb_uri:
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


# --- Over the wire: WebSocket -------------------------------------------------------------------------


@pytest.fixture
async def ws_open(wire_server: Any) -> AsyncIterator[Any]:
    """`await ws_open(token)` → an open websockets connection to the wire server (None: no token).

    Every socket is closed at the end of the test."""
    async with AsyncExitStack() as stack:

        async def open_(token: str | None) -> ClientConnection:
            url = wire_server.ws_url if token is None else f"{wire_server.ws_url}?token={token}"
            return await stack.enter_async_context(connect(url, open_timeout=5, close_timeout=2, max_size=None))

        yield open_


def log_size(server: Any) -> int:
    return server.log_path.stat().st_size


def log_since(server: Any, offset: int) -> str:
    """What the wire server has logged since `offset` (see log_size)."""
    with open(server.log_path, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


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
