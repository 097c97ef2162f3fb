"""Over the wire only: what takes a real Daphne process (chunked bodies, many concurrent clients). The scenarios
that hold in-process too run both ways from test_signup.py, test_login.py, test_me.py, test_students.py
(the `site` fixture)."""

import asyncio

import httpx
import pytest

from tests.support import (
    BIG_BODY,
    PASSWORD,
    PAYLOAD_TOO_LARGE,
    assert_error,
    unique_email,
    wire_backend,
)

pytestmark = pytest.mark.wire


def signup_body(**changes):
    return {"name": "Wire User", "email": unique_email("wire"), "password": PASSWORD, "role": "student", **changes}


def test_chunked_body_over_1_mib_is_413(api):
    """No Content-Length to go by: the limit holds for the body actually sent."""
    chunks = [BIG_BODY[i : i + 65536] for i in range(0, len(BIG_BODY), 65536)]
    response = api.post("/auth/signup", content=iter(chunks))
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert_error(response, 413, PAYLOAD_TOO_LARGE)


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
        # The pool's bound (attendance_site/settings.py): DB_POOL_MAX_SIZE, plus one kept by each socket thread.
        pool_max = int(wire_server.env.get("DB_POOL_MAX_SIZE", 10)) + int(wire_server.env.get("DB_SOCKET_THREADS", 8))
        assert held <= pool_max, f"the server holds {held} connections (pool max_size is {pool_max})"
