"""Fixtures for the live tests: defined once in helpers.py (none is autouse)."""

from live.tests.helpers import classroom, communicators, fresh_live, ws_open  # noqa: F401 (pytest fixtures)
