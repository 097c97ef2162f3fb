"""Django's SQLite backend, with SQLite's real limit on bound parameters, its statements rewritten once and its
connections kept by the process between requests.

- Django 5.2 assumes SQLite's historic default of 999 bound parameters, so one bulk insert of 1,000 attendance
  records (5 columns each) becomes six INSERTs; SQLite 3.32+ allows 32,766 by default. Asking the library keeps
  DONE at one INSERT whatever the class size, as on PostgreSQL.
- Django's cursor rewrites each statement's "%s" markers to SQLite's "?" with a regular expression on every
  execution (about 6 µs for a statement of 20 parameters); the rewritten statement is remembered here, for the
  last STATEMENTS_REMEMBERED statements up to REMEMBERED_LENGTH characters (a prepared query, common/prepared.py,
  runs the same one each time; a bulk INSERT of a thousand rows is rewritten each time, as before).
- Under ASGI, Django keeps database connections per request (per context), so every HTTP request opened the
  database file, registered Django's SQL functions, ran the PRAGMAs and closed it again: over half of a simple
  GET's time under py-spy (docs/benchmark.md, "HTTP"). Closing a connection here keeps the open SQLite
  connection for the next one the process opens, on whatever thread — rolled back if a transaction was left
  open. Up to KEEP_IDLE are kept per database file and options (more than ever are in use at once: the
  HTTP_THREADS request threads, the event loop's light reads), the rest closed. They are the process's, not a
  thread's: a request thread started for a burst and ended after it (server/http_threads.py) takes one and
  gives it back, where a connection of its own cost it a new one each time (14 % of a report's time under
  32 connections). Django opens SQLite connections with check_same_thread off; each is used by one thread at a
  time. A kept connection is plain SQLite state (a file handle): before it is kept, every cursor made on it is
  closed (a statement left unread holds a snapshot) and an open transaction rolled back, so nothing in it
  outlives what the close would have ended. An in-memory database (the in-process tests') is left as Django has
  it.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from functools import cache, lru_cache
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


# Connections kept idle per database file and options; more are closed.
KEEP_IDLE = 16


STATEMENTS_REMEMBERED = 1024
REMEMBERED_LENGTH = 4096


def qmark(query: str) -> str:
    """Django's "format" style ("%s", "%%") as SQLite's "qmark" style, as Django's cursor rewrites it (5.2)."""
    rewritten: str = base.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")
    return rewritten


# The statements a process runs are few and run again and again; a long one (a bulk insert) is not remembered.
qmark_statement = lru_cache(maxsize=STATEMENTS_REMEMBERED)(qmark)


def as_qmark(query: str) -> str:
    """`query` in SQLite's style: remembered, unless it is long."""
    return qmark_statement(query) if len(query) <= REMEMBERED_LENGTH else qmark(query)


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    """Django's SQLite cursor, each statement rewritten once (qmark_statement). Django's hook (5.2): were it
    renamed, this would simply not be called, and Django would rewrite every statement as before."""

    def convert_query(self, query: str, *, param_names: Any = None) -> Any:
        if param_names is None:
            return as_qmark(query)
        return super().convert_query(query, param_names=param_names)  # type: ignore[misc]  # (not in the stubs)


class KeptConnections:
    """The process's open SQLite connections not in use: database file and options → connections, the most
    recently kept taken first (its pages are the warmest)."""

    def __init__(self, keep_idle: int = KEEP_IDLE) -> None:
        self.keep_idle = keep_idle
        self.by_name: dict[str, list[sqlite3.Connection]] = {}
        self._lock = threading.Lock()  # kept and taken from any thread

    def take(self, name: str) -> sqlite3.Connection | None:
        with self._lock:
            idle = self.by_name.get(name)
            return idle.pop() if idle else None

    def keep(self, name: str, connection: sqlite3.Connection) -> bool:
        """Keep it for the next connection to `name`; False (not kept) when KEEP_IDLE already are."""
        with self._lock:
            idle = self.by_name.setdefault(name, [])
            if len(idle) >= self.keep_idle:
                return False
            idle.append(connection)
            return True

    def close_all(self) -> None:
        with self._lock:
            idle = [connection for connections in self.by_name.values() for connection in connections]
            self.by_name.clear()
        for connection in idle:
            connection.close()


kept = KeptConnections()


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The cursors made on this connection: closed before it is handed on. A statement not read to its end
        # (a generator dropped half-way) keeps SQLite's read transaction open, and with it the snapshot: the
        # next request would read the database as it was.
        self._cursors: weakref.WeakSet[sqlite3.Cursor] = weakref.WeakSet()
        # Foreign keys turned off (a schema change does): turned on again before the connection is kept.
        self._constraints_off = False
        # What the open connection is kept as (_kept_as), worked out when it was opened.
        self._kept_key = ""

    def create_cursor(self, name: Any = None) -> Any:
        # Django's create_cursor, with its cursor class's statements rewritten once.
        cursor = self.connection.cursor(factory=SQLiteCursorWrapper)
        self._cursors.add(cursor)
        return cursor

    def get_new_connection(self, conn_params: dict[str, Any]) -> sqlite3.Connection:
        # From the settings as they are now: Django renames the file in them to make a test database.
        self._kept_key = self._kept_as()
        if not self.is_in_memory_db():
            connection = kept.take(self._kept_key)
            if connection is not None:
                return connection
        opened: sqlite3.Connection = super().get_new_connection(conn_params)
        return opened

    def fetch_all(self, sql: str, params: list[Any]) -> list[Any] | None:
        """The rows of one read (in Django's "format" style, as a compiled query is), straight on SQLite's
        connection: Django's cursor and its wrappers cost more than a light request's lookup itself
        (common/prepared.py). None, and nothing run, when something watches this connection's queries (the query
        log: DEBUG, assertNumQueries; an execute wrapper): the caller then runs it through a cursor, seen as
        every query is. The same checks as a cursor's: not on a running event loop, not on another thread's
        connection, not in a transaction already broken; and the same errors (Django's, errors_occurred set)."""
        if self.queries_logged or self.execute_wrappers:
            return None
        self.ensure_connection()
        self.validate_thread_sharing()
        self.validate_no_broken_transaction()
        with self.wrap_database_errors:
            rows: list[Any] = self.connection.execute(as_qmark(sql), params).fetchall()
        return rows

    def _kept_as(self) -> str:
        """The database file and the options its connections are opened with: two aliases of one file with
        different options never take each other's."""
        return repr((str(self.settings_dict["NAME"]), sorted(self.settings_dict.get("OPTIONS", {}).items())))

    def disable_constraint_checking(self) -> bool:
        self._constraints_off = True
        return bool(super().disable_constraint_checking())

    def enable_constraint_checking(self) -> None:
        super().enable_constraint_checking()
        self._constraints_off = False

    # Django's hook under close() (django/db/backends/base/base.py, 5.2). Were it renamed, this would simply not
    # be called: connections would close as Django closes them, never wrongly kept.
    def _close(self) -> None:
        connection, key = self.connection, self._kept_key
        # Inside an atomic block Django keeps the closed connection on the wrapper (closed_in_transaction): not
        # one to hand on.
        if connection is None or self.is_in_memory_db() or self.in_atomic_block:
            super()._close()  # type: ignore[misc]
            return
        try:
            self._end_statements(connection)
            if self._constraints_off:  # what a new connection has, and a schema change may have left off
                connection.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error:  # not a connection to hand on: closed, as Django would
            super()._close()  # type: ignore[misc]
            return
        if not kept.keep(key, connection):
            super()._close()  # type: ignore[misc]

    def _end_statements(self, connection: sqlite3.Connection) -> None:
        """End what a request may have left open on `connection`: its cursors (a statement not read to its end
        holds SQLite's read transaction, and with it the snapshot) and a transaction begun outside Django's."""
        if self._cursors:  # (at every request's start and end: most have none left)
            for cursor in list(self._cursors):
                cursor.close()  # resets its statement, which ends the read transaction it held
            self._cursors.clear()
        if connection.in_transaction:
            connection.rollback()

    def close_if_unusable_or_obsolete(self) -> None:
        # At each request's start and end (request_started, request_finished). A file's connection stays open
        # between requests (CONN_MAX_AGE=None, attendance_site/settings.py): what closing it would have ended
        # is ended here, as _close does before keeping a connection, so the next request reads the database as
        # it is now.
        super().close_if_unusable_or_obsolete()
        connection = self.connection
        if connection is None or self.in_atomic_block or self.is_in_memory_db():
            return
        try:
            self._end_statements(connection)
        except sqlite3.Error:  # not a connection to go on with: closed, as Django would
            self.close()
