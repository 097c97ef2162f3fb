"""Django's SQLite backend, with SQLite's real limit on bound parameters and its connections kept per thread.

- Django 5.2 assumes SQLite's historic default of 999 bound parameters, so one bulk insert of 1,000 attendance
  records (5 columns each) becomes six INSERTs; SQLite 3.32+ allows 32,766 by default. Asking the library keeps
  DONE at one INSERT whatever the class size, as on PostgreSQL.
- Under ASGI, Django keeps database connections per request (per context), so every HTTP request opened the
  database file, registered Django's SQL functions, ran the PRAGMAs and closed it again: over half of a simple
  GET's time under py-spy (docs/benchmark.md, "HTTP"). Closing a connection here hands the open SQLite
  connection back to its thread instead — rolled back if a transaction was left open — and the next
  connection the thread opens takes it. A thread keeps at most one; the request threads are themselves kept
  between requests (server/http_threads.py), so a request costs no open and no close. A kept connection is
  plain SQLite state (a file handle): before it is handed on, every cursor made on it is closed (a statement
  left unread holds a snapshot) and an open transaction rolled back, so nothing in it outlives what the close
  would have ended. An in-memory database (the in-process tests') is left as Django has it.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from functools import cache
from typing import Any

from django.db.backends.sqlite3 import base, features


@cache
def variable_limit() -> int:
    with sqlite3.connect(":memory:") as probe:
        return probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


class DatabaseFeatures(features.DatabaseFeatures):
    @property
    def max_query_params(self) -> int:  # type: ignore[override]
        return variable_limit()


class KeptConnections(threading.local):
    """This thread's open SQLite connections not in use: database file and options → connection."""

    def __init__(self) -> None:
        self.by_name: dict[str, sqlite3.Connection] = {}


kept = KeptConnections()


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The cursors made on this connection: closed before it is handed on. A statement not read to its end
        # (a generator dropped half-way) keeps SQLite's read transaction open, and with it the snapshot: the
        # next request would read the database as it was.
        self._cursors: weakref.WeakSet[sqlite3.Cursor] = weakref.WeakSet()

    def create_cursor(self, name: Any = None) -> Any:
        cursor = super().create_cursor(name)
        self._cursors.add(cursor)
        return cursor

    def get_new_connection(self, conn_params: dict[str, Any]) -> sqlite3.Connection:
        if not self.is_in_memory_db():
            connection = kept.by_name.pop(self._kept_as(), None)
            if connection is not None:
                # What a new connection gets and a schema change may have left off (no file I/O).
                connection.execute("PRAGMA foreign_keys = ON")
                return connection
        opened: sqlite3.Connection = super().get_new_connection(conn_params)
        return opened

    # Django's hook under close() (django/db/backends/base/base.py, 5.2). Were it renamed, this would simply not
    # be called: connections would close as Django closes them, never wrongly kept.
    def _close(self) -> None:
        connection, key = self.connection, self._kept_as()
        # Inside an atomic block Django keeps the closed connection on the wrapper (closed_in_transaction): not
        # one to hand on.
        if connection is None or self.is_in_memory_db() or self.in_atomic_block or key in kept.by_name:
            super()._close()  # type: ignore[misc]
            return
        try:
            for cursor in list(self._cursors):
                cursor.close()  # resets its statement, which ends the read transaction it held
            self._cursors.clear()
            if connection.in_transaction:
                connection.rollback()
        except sqlite3.Error:  # not a connection to hand on: closed, as Django would
            super()._close()  # type: ignore[misc]
            return
        kept.by_name[key] = connection

    def _kept_as(self) -> str:
        """The database file and the options its connections were opened with: two aliases of one file with
        different options never take each other's."""
        return repr((str(self.settings_dict["NAME"]), sorted(self.settings_dict.get("OPTIONS", {}).items())))
