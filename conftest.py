"""Fixtures shared by every app's tests."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.servers import DaphneServer, scratch_database

# Users, tokens and envelope assertions shared by every app's tests (plugins get assertion rewriting).
pytest_plugins = ["accounts.tests.helpers"]


@pytest.fixture(scope="session", autouse=True)
def _close_socket_db_connections(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Socket events keep a database connection on their worker thread (live.db): close it before
    pytest-django drops the test database (depending on django_db_setup orders the teardowns)."""
    yield
    from live.db import close_db_connections

    with django_db_blocker.unblock():
        asyncio.run(close_db_connections())


@pytest.fixture(scope="session")
def wire_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    """A real Daphne process serving the whole app, on a scratch database."""
    tmp_dir = tmp_path_factory.mktemp("wire")
    with scratch_database(tmp_dir) as db_env:
        server = DaphneServer(db_env, log_path=tmp_dir / "daphne.log")
        server.migrate()
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def api(wire_server: DaphneServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=wire_server.http_url, timeout=10.0) as client:
        yield client


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{secrets.token_hex(6)}@example.com"


class Person:
    """A signed-up, logged-in user of a wire server."""

    def __init__(self, client: httpx.Client, role: str, name: str | None = None) -> None:
        self.email = unique_email(role)
        self.password = "secret123"
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


@pytest.fixture
def make_person(api: httpx.Client):
    def make(role: str, name: str | None = None) -> Person:
        return Person(api, role, name)

    return make
