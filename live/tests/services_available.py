"""Tests that need Redis or PostgreSQL: skip with the reason when the service is unreachable, except when
REQUIRE_SERVICES=1 (CI sets it), where an unreachable service is a failure, never a silent skip."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_REDIS = "redis://127.0.0.1:6379"
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"


def services_required() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1"


def require_service(name: str, url: str, error: Exception | None) -> None:
    """Skip (or, with REQUIRE_SERVICES=1, fail) when `error` says the service could not be reached."""
    if error is None:
        return
    reason = f"{name} unreachable at {url}: {error}"
    if services_required():
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1: services must be up)", pytrace=False)
    pytest.skip(reason)


def redis_url(db: int) -> str:
    """The Redis server of REDIS_URL (or 127.0.0.1:6379), database number `db`."""
    parts = urlsplit(os.environ.get("REDIS_URL") or DEFAULT_REDIS)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))


def require_redis(url: str) -> None:
    import redis

    error = None
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3) as client:
            client.ping()
    except redis.RedisError as exc:
        error = exc
    require_service("Redis", url, error)


def postgres_url() -> str:
    """DATABASE_URL when it names PostgreSQL, else the local server's maintenance database."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else DEFAULT_POSTGRES


def require_postgres(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    maintenance = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    error = None
    try:
        with psycopg.connect(maintenance, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        error = exc
    require_service("PostgreSQL", maintenance, error)
