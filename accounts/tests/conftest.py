"""Fixtures for the accounts tests: defined once in helpers.py."""

import pytest

pytest.register_assert_rewrite("accounts.tests.helpers")

from accounts.tests.helpers import (  # noqa: E402, F401 (pytest fixtures, imported after the rewrite hook)
    admin_site_client,
    other_teacher,
    student,
    superuser,
    teacher,
)
