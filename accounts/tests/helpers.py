"""Shared test helpers: contract strings, envelope assertions, users and tokens made in-process.

The assertion helpers work on both Django test-client responses and httpx responses (both have
`status_code`, `headers` and `json()`), so in-process and over-the-wire tests share them.
The fixtures at the bottom are re-exported by the apps' `conftest.py` files.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from accounts.tokens import issue_token

# --- The contract's exact strings (DESIGN.md). Hard-coded on purpose: tests must not follow the code.
INVALID_SCHEMA = "Invalid request schema"
UNAUTHORIZED = "Unauthorized, token missing or invalid"
TEACHER_REQUIRED = "Forbidden, teacher access required"
NOT_CLASS_TEACHER = "Forbidden, not class teacher"
CLASS_NOT_FOUND = "Class not found"
STUDENT_NOT_FOUND = "Student not found"
EMAIL_EXISTS = "Email already exists"
BAD_CREDENTIALS = "Invalid email or password"
NOT_FOUND = "Not found"
METHOD_NOT_ALLOWED = "Method not allowed"
PAYLOAD_TOO_LARGE = "Payload too large"
INTERNAL_ERROR = "Internal server error"


PASSWORD = "secret123"
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
# A well-formed ObjectId that names nothing.
MISSING_ID = "5f0c0ffee0ddba11deadbeef"
MALFORMED_IDS = [
    "not-an-id",
    "5F0C0FFEE0DDBA11DEADBEEF",  # upper case
    "5f0c0ffee0ddba11deadbee",  # 23 chars
    "5f0c0ffee0ddba11deadbeefa",  # 25 chars
    "z" * 24,
]

BIG_BODY = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'  # a valid JSON object just over 1 MiB
DEEP_BODY = b'{"name": ' + b"[" * 5000 + b"]" * 5000 + b"}"


# --- Envelope assertions ------------------------------------------------------------------------
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


# --- Users and tokens, in-process ----------------------------------------------------------------
def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{secrets.token_hex(4)}@example.com"


def make_user(role: str = "student", *, name: str | None = None, email: str | None = None) -> User:
    return User.objects.create_user(
        email=email or unique_email(role),
        password=PASSWORD,
        name=name or f"{role.title()} {secrets.token_hex(2)}",
        role=role,
    )


def make_users(role: str, count: int) -> list[User]:
    return [make_user(role) for _ in range(count)]


def token_for(user: User) -> str:
    return issue_token(user.id, user.role)


def auth(user_or_token: User | str | None) -> dict[str, str]:
    """Headers carrying a user's token (spec form: the bare JWT); none for None (an anonymous call)."""
    if user_or_token is None:
        return {}
    token = user_or_token if isinstance(user_or_token, str) else token_for(user_or_token)
    return {"Authorization": token}


def forge_token(
    secret: str, *, user_id: str, role: str = "student", age: int = 0, ttl: int = 3600, **overrides: Any
) -> str:
    """A token signed with `secret`, issued `age` seconds ago and valid for `ttl` seconds from issue."""
    issued = datetime.now(tz=UTC) - timedelta(seconds=age)
    claims: dict[str, Any] = {"userId": user_id, "role": role, "iat": issued, "exp": issued + timedelta(seconds=ttl)}
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm="HS256")


# --- Over the wire --------------------------------------------------------------------------------
def server_jwt_secret(server: Any) -> str:
    """The signing key of a tests.servers.DaphneServer (JWT_SECRET, defaulting to SECRET_KEY)."""
    return server.env.get("JWT_SECRET") or server.env["SECRET_KEY"]


def server_jwt_ttl(server: Any) -> int:
    return int(server.env.get("JWT_TTL_SECONDS", 86400))


# --- In-process requests -------------------------------------------------------------------------
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
    """Run `request()` and return how many SQL queries it made (asserting it succeeded)."""
    with CaptureQueriesContext(connection) as queries:
        response = request()
    assert response.status_code == 200, response.content
    return len(queries)


# --- Fixtures (re-exported by accounts/tests/conftest.py and classes/tests/conftest.py) ----------
@pytest.fixture
def teacher(db) -> User:
    return make_user("teacher", name="Tina Teacher")


@pytest.fixture
def other_teacher(db) -> User:
    return make_user("teacher", name="Oscar Other")


@pytest.fixture
def student(db) -> User:
    return make_user("student", name="Sam Student")


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser(email="admin@example.com", password=PASSWORD, name="Ada Admin")


@pytest.fixture
def admin_site_client(client, superuser):
    """The test client logged in to the Django admin as a superuser."""
    client.force_login(superuser)
    return client
