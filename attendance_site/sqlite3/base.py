"""Django's SQLite backend, told the SQLite library's real limit on bound parameters.

Django 5.2 assumes SQLite's historic default of 999, so one bulk insert of 1,000 attendance records
(5 columns each) becomes six INSERTs; SQLite 3.32+ allows 32,766 by default. Asking the library keeps
DONE at one INSERT whatever the class size, as on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from functools import cache

from django.db.backends.sqlite3 import base, features


@cache
def variable_limit() -> int:
    with sqlite3.connect(":memory:") as probe:
        return probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


class DatabaseFeatures(features.DatabaseFeatures):
    @property
    def max_query_params(self) -> int:  # type: ignore[override]
        return variable_limit()


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
