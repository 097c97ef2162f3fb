"""Over the wire: /auth/*, /students and the app-wide envelope rules, against a real Daphne process."""

import asyncio
import subprocess
import sys
import time

import httpx
import jwt
import orjson
import pytest
from bson import ObjectId

from tests.servers import ROOT
from tests.support import (
    BAD_CREDENTIALS,
    BIG_BODY,
    DEEP_BODY,
    EMAIL_EXISTS,
    INVALID_SCHEMA,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PASSWORD,
    PAYLOAD_TOO_LARGE,
    TEACHER_REQUIRED,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
    assert_public_user,
    forge_token,
    server_jwt_secret,
    server_jwt_ttl,
    unique_email,
    wire_backend,
)

pytestmark = pytest.mark.wire


def signup_body(**changes):
    return {"name": "Wire User", "email": unique_email("wire"), "password": PASSWORD, "role": "student", **changes}


# --- POST /auth/signup -------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["teacher", "student"])
def test_signup(api, role):
    body = signup_body(role=role)
    data = assert_ok(api.post("/auth/signup", json=body), 201)
    assert_public_user(data, name="Wire User", email=body["email"], role=role)


def test_signup_trims_and_lowercases_email_then_login_and_duplicate(api):
    email = unique_email("case")
    data = assert_ok(api.post("/auth/signup", json=signup_body(email=f"  {email.upper()} ")), 201)
    assert data["email"] == email
    assert_ok(api.post("/auth/login", json={"email": email, "password": PASSWORD}))
    assert_error(api.post("/auth/signup", json=signup_body(email=email.title())), 400, EMAIL_EXISTS)
    assert_error(api.post("/auth/signup", json=signup_body(email=email)), 400, EMAIL_EXISTS)


def test_signup_ignores_unknown_fields(api):
    data = assert_ok(api.post("/auth/signup", json=signup_body(isAdmin=True, password2="x")), 201)
    assert "isAdmin" not in data and "password" not in data and "password2" not in data


@pytest.mark.parametrize(
    "changes",
    [
        {"name": ""},
        {"name": "  "},
        {"name": 5},
        {"email": "nope"},
        {"password": "12345"},
        {"password": 123456},
        {"role": "admin"},
        {"role": None},
    ],
    ids=[
        "empty-name",
        "blank-name",
        "name-int",
        "bad-email",
        "short-password",
        "password-int",
        "bad-role",
        "null-role",
    ],
)
def test_signup_invalid_field_is_400(api, changes):
    assert_error(api.post("/auth/signup", json=signup_body(**changes)), 400, INVALID_SCHEMA)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b'"text"', b"null"])
def test_signup_body_not_a_json_object_is_400(api, raw):
    assert_error(
        api.post("/auth/signup", content=raw, headers={"Content-Type": "application/json"}), 400, INVALID_SCHEMA
    )


@pytest.mark.parametrize("content_type", ["text/plain", None])
def test_signup_body_parsed_whatever_content_type(api, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    assert_ok(api.post("/auth/signup", content=orjson.dumps(signup_body()), headers=headers), 201)


def test_body_over_1_mib_is_413(api):
    assert_error(api.post("/auth/signup", content=BIG_BODY), 413, PAYLOAD_TOO_LARGE)


def test_chunked_body_over_1_mib_is_413(api):
    """No Content-Length to go by: the limit holds for the body actually sent."""
    chunks = [BIG_BODY[i : i + 65536] for i in range(0, len(BIG_BODY), 65536)]
    response = api.post("/auth/signup", content=iter(chunks))
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert_error(response, 413, PAYLOAD_TOO_LARGE)


def test_deeply_nested_json_is_400(api):
    assert_error(api.post("/auth/signup", content=DEEP_BODY), 400, INVALID_SCHEMA)


# --- POST /auth/login ----------------------------------------------------------------------------------
def test_login_token_claims(api, wire_server, make_person):
    person = make_person("teacher")
    before = int(time.time())
    token = assert_ok(api.post("/auth/login", json={"email": person.email, "password": PASSWORD}))["token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, server_jwt_secret(wire_server), algorithms=["HS256"])
    assert set(claims) == {"userId", "role", "iat", "exp"}
    assert (claims["userId"], claims["role"]) == (person.id, "teacher")
    assert before - 1 <= claims["iat"] <= time.time() + 1
    assert claims["exp"] - claims["iat"] == server_jwt_ttl(wire_server)


def test_login_bad_credentials_are_400_with_one_message(api, make_person):
    person = make_person("student")
    wrong = api.post("/auth/login", json={"email": person.email, "password": "wrong-password"})
    unknown = api.post("/auth/login", json={"email": unique_email("nobody"), "password": PASSWORD})
    assert_error(wrong, 400, BAD_CREDENTIALS)
    assert_error(unknown, 400, BAD_CREDENTIALS)


@pytest.mark.parametrize(
    "body",
    [
        {"email": "nope", "password": PASSWORD},
        {"email": "a@example.com", "password": ""},
        {"email": "a@example.com", "password": 123456},
        {"email": "a@example.com"},
    ],
    ids=["bad-email", "empty-password", "password-int", "no-password"],
)
def test_login_invalid_body_is_400(api, body):
    assert_error(api.post("/auth/login", json=body), 400, INVALID_SCHEMA)


# --- GET /auth/me and the Authorization header -----------------------------------------------------------
def test_me(api, make_person):
    person = make_person("student")
    data = assert_ok(api.get("/auth/me", headers=person.headers))
    assert_public_user(data, name=person.name, email=person.email, role="student")
    assert data["_id"] == person.id


def test_me_accepts_bearer(api, make_person):
    person = make_person("teacher")
    assert assert_ok(api.get("/auth/me", headers={"Authorization": f"Bearer {person.token}"}))["_id"] == person.id


@pytest.mark.parametrize("authorization", [None, "", "garbage", "Bearer", "Bearer a.b.c", "Basic dXNlcjpwYXNz"])
def test_me_missing_or_garbage_token_is_401(api, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    assert_error(api.get("/auth/me", headers=headers), 401, UNAUTHORIZED)


def test_me_expired_token_is_401(api, wire_server, make_person):
    person = make_person("student")
    token = forge_token(server_jwt_secret(wire_server), user_id=person.id, age=7200, ttl=3600)
    assert_error(api.get("/auth/me", headers={"Authorization": token}), 401, UNAUTHORIZED)


def test_me_wrong_secret_is_401(api, make_person):
    person = make_person("student")
    token = forge_token("not-the-server-secret-but-long-enough", user_id=person.id)
    assert_error(api.get("/auth/me", headers={"Authorization": token}), 401, UNAUTHORIZED)


def test_me_token_for_unknown_user_is_401(api, wire_server):
    token = forge_token(server_jwt_secret(wire_server), user_id=str(ObjectId()))
    assert_error(api.get("/auth/me", headers={"Authorization": token}), 401, UNAUTHORIZED)


def test_me_token_of_deleted_user_is_401(api, wire_server, make_person):
    person = make_person("student")
    assert_ok(api.get("/auth/me", headers=person.headers))
    code = f"from accounts.models import User; User.objects.filter(pk={person.id!r}).delete()"
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=wire_server.env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert_error(api.get("/auth/me", headers=person.headers), 401, UNAUTHORIZED)


# --- GET /students -------------------------------------------------------------------------------------
def test_students_lists_only_students(api, make_person):
    teacher = make_person("teacher")
    student = make_person("student")
    data = assert_ok(api.get("/students", headers=teacher.headers))
    assert {"_id": student.id, "name": student.name, "email": student.email} in data
    assert all(set(item) == {"_id", "name", "email"} for item in data)
    assert teacher.id not in {item["_id"] for item in data}


def test_students_for_student_is_403(api, make_person):
    assert_error(api.get("/students", headers=make_person("student").headers), 403, TEACHER_REQUIRED)


def test_students_without_token_is_401(api):
    assert_error(api.get("/students"), 401, UNAUTHORIZED)


# --- routing ---------------------------------------------------------------------------------------------
# "/" is the web console (console/tests); other paths near it are not.
UNKNOWN_PATHS = ["/index.html", "/nope", "/auth/me/", "/auth/signup/", "/students/", "/auth"]


@pytest.mark.parametrize("path", UNKNOWN_PATHS)
def test_unknown_route_is_json_404(api, path):
    assert_error(api.get(path), 404, NOT_FOUND)


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize("path", UNKNOWN_PATHS)
def test_unknown_route_with_unsafe_method_is_json_404(api, path, method):
    assert_error(api.request(method, path, json={}), 404, NOT_FOUND)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/auth/signup"), ("GET", "/auth/login"), ("POST", "/auth/me"), ("DELETE", "/students")],
)
def test_wrong_method_is_405_without_auth(api, method, path):
    assert_error(api.request(method, path), 405, METHOD_NOT_ALLOWED)


async def test_many_concurrent_requests_all_succeed(wire_server):
    """Daphne may run each request on a thread of its own: database connections must not pile up until
    the server refuses clients (PostgreSQL: "too many clients already" → 500s)."""
    semaphore = asyncio.Semaphore(16)

    async def sign_up_and_log_in(client: httpx.AsyncClient) -> tuple[int, int]:
        async with semaphore:
            body = signup_body()
            signup = await client.post("/auth/signup", json=body)
            login = await client.post("/auth/login", json={"email": body["email"], "password": PASSWORD})
            return signup.status_code, login.status_code

    async with httpx.AsyncClient(base_url=wire_server.http_url, timeout=30) as client:
        results = await asyncio.gather(*(sign_up_and_log_in(client) for _ in range(300)))
    assert set(results) == {(201, 200)}
    # PostgreSQL shows the connections each database holds. (MongoDB: one MongoClient pool per process, shared
    # by every thread, so nothing can pile up; SQLite: a file, no server to refuse clients.)
    if wire_backend(wire_server) == "postgresql":
        import psycopg

        database_url = wire_server.env["DATABASE_URL"]
        database = database_url.rsplit("/", 1)[1]
        with psycopg.connect(database_url) as conn:
            query = "SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = %s"
            held = conn.execute(query, [database]).fetchone()[0]
        assert held <= 10, f"the server holds {held} connections (pool max_size is 10)"
