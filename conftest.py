"""Fixtures shared by every app's tests live in tests/support.py (one module of factories and helpers)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

# Registered as a plugin: its fixtures are everywhere and its assertions get pytest's rewriting.
pytest_plugins = ["tests.support"]


@pytest.fixture(scope="session", autouse=True)
def _close_socket_db_connections(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Socket events keep a database connection on their worker thread (live.db): close it before
    pytest-django drops the test database (depending on django_db_setup orders the teardowns)."""
    yield
    from live.db import close_db_connections

    with django_db_blocker.unblock():
        asyncio.run(close_db_connections())
