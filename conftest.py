"""Fixtures shared by every app's tests live in tests/support.py (one module of factories and helpers)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

# Registered as plugins: their fixtures are everywhere and its assertions get pytest's rewriting.
pytest_plugins = ["tests.support", "tests.browsers"]


@pytest.fixture(scope="session", autouse=True)
def _close_socket_db_connections(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Socket events keep a database connection on their worker thread (live.db): close it before
    pytest-django drops the test database (depending on django_db_setup orders the teardowns)."""
    yield
    from live.db import close_db_connections

    with django_db_blocker.unblock():
        asyncio.run(close_db_connections())


@pytest.fixture(scope="session", autouse=True)
def _static_files_without_collectstatic() -> Iterator[None]:
    """In-process tests render pages (admin, console) without running collectstatic: name the files
    without the manifest's hashes. The over-the-wire servers collect and serve the real thing."""
    from django.conf import settings
    from django.test import override_settings

    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    with override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain}):
        yield
