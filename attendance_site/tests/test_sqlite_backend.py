"""attendance_site.sqlite3: a closed connection's SQLite connection is kept for the next one the process opens,
on any thread — clean (a transaction left open is rolled back), up to KEEP_IDLE per database file and options,
never two users at once — and an in-memory database is left as Django has it.

On a database file of the test's own (the in-process tests' database is in-memory), through Django's
connection API as a request uses it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db.utils import ConnectionHandler

from attendance_site.sqlite3.base import kept


@pytest.fixture(autouse=True)
def unblocked(django_db_blocker: Any) -> Iterator[None]:
    """Databases of these tests' own, not the test database pytest-django guards."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def database(tmp_path: Path) -> Iterator[ConnectionHandler]:
    """Connections to a fresh database file, configured as settings.py configures SQLite."""
    handler = ConnectionHandler({
        "default": {
            "ENGINE": "attendance_site.sqlite3",
            "NAME": str(tmp_path / "kept.sqlite3"),
            "OPTIONS": {"timeout": 5, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"},
        },
    })
    with handler["default"].cursor() as cursor:
        cursor.execute("CREATE TABLE marks (student TEXT)")
    yield handler
    handler.close_all()
    kept.close_all()


def fresh(database: ConnectionHandler) -> Any:
    """A new Django connection to the database: what the next request gets."""
    return database.create_connection("default")


def raw(wrapper: Any) -> Any:
    wrapper.ensure_connection()
    return wrapper.connection


def count(wrapper: Any) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM marks")
        return int(cursor.fetchone()[0])


def test_the_next_connection_reuses_the_closed_one(database: ConnectionHandler) -> None:
    first = fresh(database)
    opened = raw(first)
    first.close()
    second = fresh(database)
    assert raw(second) is opened
    assert count(second) == 0  # and it works


def test_a_transaction_left_open_is_rolled_back_before_the_connection_is_kept(database: ConnectionHandler) -> None:
    first = fresh(database)
    first.set_autocommit(False)
    with first.cursor() as cursor:
        cursor.execute("INSERT INTO marks VALUES ('ann')")
    opened = first.connection
    assert opened.in_transaction
    first.close()
    assert not opened.in_transaction
    second = fresh(database)
    assert raw(second) is opened
    assert count(second) == 0  # the uncommitted row is gone, for this connection and any other


def test_up_to_keep_idle_are_kept_and_the_rest_closed(database: ConnectionHandler,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kept, "keep_idle", 2)
    wrappers = [fresh(database) for _ in range(3)]
    opened = [raw(wrapper) for wrapper in wrappers]
    assert len({id(connection) for connection in opened}) == 3  # in use at once: three connections
    for wrapper in wrappers:
        wrapper.close()
    assert kept.by_name[wrappers[0]._kept_key] == opened[:2]
    with pytest.raises(Exception, match="closed"):
        opened[2].execute("SELECT 1")
    # Taken most recently kept first, and never by two at once.
    again = [raw(fresh(database)) for _ in range(3)]
    assert again[:2] == [opened[1], opened[0]]
    assert again[2] not in opened


def test_a_connection_closed_on_one_thread_is_taken_on_another(database: ConnectionHandler) -> None:
    """A request thread started for a burst takes a kept connection instead of opening one; and gives it back."""
    first = fresh(database)
    opened = raw(first)
    first.close()
    on_other_thread: list[Any] = []

    def other() -> None:
        wrapper = fresh(database)
        on_other_thread.append(raw(wrapper))
        assert count(wrapper) == 0  # and it works there
        wrapper.close()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert on_other_thread == [opened]
    assert raw(fresh(database)) is opened


@pytest.mark.parametrize("other", ["another file", "the same file, other options"])
def test_another_database_or_options_keeps_its_own(database: ConnectionHandler, tmp_path: Path, other: str) -> None:
    first = fresh(database)
    opened = raw(first)
    first.close()
    configured = dict(database.settings["default"])
    if other == "another file":
        configured["NAME"] = str(tmp_path / "b.sqlite3")
    else:
        configured["OPTIONS"] = {"timeout": 1}
    wrapper = ConnectionHandler({"default": configured})["default"]
    its_own = raw(wrapper)
    assert its_own is not opened
    wrapper.close()
    assert kept.by_name[wrapper._kept_key] == [its_own]
    assert kept.by_name[first._kept_key] == [opened]


def test_a_reused_connection_has_foreign_keys_checked_again(database: ConnectionHandler) -> None:
    """A schema change that failed half-way can leave them off; a new connection would have them on."""
    first = fresh(database)
    first.disable_constraint_checking()
    first.close()
    second = fresh(database)
    with second.cursor() as cursor:
        cursor.execute("PRAGMA foreign_keys")
        assert cursor.fetchone()[0] == 1


def test_a_connection_closed_inside_an_atomic_block_is_not_handed_on(database: ConnectionHandler) -> None:
    """Django keeps it on the wrapper (closed_in_transaction) until the block ends: it is closed for real."""
    first = fresh(database)
    first.set_autocommit(False)
    first.in_atomic_block = True  # as transaction.atomic() leaves it when the connection is closed inside
    opened = raw(first)
    first.close()
    first.in_atomic_block = False
    assert not kept.by_name.get(first._kept_key)
    with pytest.raises(Exception, match="closed"):
        opened.execute("SELECT 1")


def test_an_in_memory_database_is_never_kept() -> None:
    """(Django ignores close() on one, which would destroy it; closed below that, it is closed for real.)"""
    handler = ConnectionHandler({"default": {"ENGINE": "attendance_site.sqlite3", "NAME": ":memory:"}})
    wrapper = handler["default"]
    opened = raw(wrapper)
    wrapper._close()
    assert ":memory:" not in kept.by_name
    with pytest.raises(Exception, match="closed"):
        opened.execute("SELECT 1")


def test_a_cursor_left_unread_does_not_hold_an_old_snapshot(database: ConnectionHandler, tmp_path: Path) -> None:
    """A statement not read to its end keeps SQLite's read transaction — and its snapshot — open: a connection
    handed on so would show the next request the database as it was."""
    first = fresh(database)
    with first.cursor() as cursor:
        cursor.executemany("INSERT INTO marks VALUES (%s)", [("ann",), ("ben",), ("cleo",)])
    unread = first.cursor()
    unread.execute("SELECT student FROM marks")
    unread.fetchone()  # and left there, as a generator dropped half-way leaves it
    first.close()
    writer = ConnectionHandler({"default": {"ENGINE": "django.db.backends.sqlite3",
                                            "NAME": str(tmp_path / "kept.sqlite3")}})
    with writer["default"].cursor() as cursor:
        cursor.execute("INSERT INTO marks VALUES ('dan')")
    writer.close_all()
    second = fresh(database)
    assert count(second) == 4


@pytest.mark.parametrize("query", [
    "SELECT * FROM marks WHERE student = %s",
    "SELECT * FROM marks WHERE student IN (%s, %s, %s)",
    "SELECT '100%%' || %s",  # a literal percent sign
    "SELECT 1",
])
def test_statements_are_rewritten_as_django_rewrites_them(query: str) -> None:
    from django.db.backends.sqlite3.base import SQLiteCursorWrapper

    from attendance_site.sqlite3.base import qmark_statement

    django_cursor = SQLiteCursorWrapper(sqlite3.connect(":memory:"))
    assert qmark_statement(query) == django_cursor.convert_query(query)


def test_a_statement_is_rewritten_once_and_runs(database: ConnectionHandler) -> None:
    from attendance_site.sqlite3.base import qmark_statement

    wrapper = fresh(database)
    qmark_statement.cache_clear()
    for student in ("ann", "ben"):
        with wrapper.cursor() as cursor:
            cursor.execute("INSERT INTO marks VALUES (%s)", [student])
            cursor.execute("SELECT COUNT(*) FROM marks WHERE student LIKE '%%' || %s", ["n"])
            assert cursor.fetchone()[0] == {"ann": 1, "ben": 2}[student]
    assert qmark_statement.cache_info().hits == 2  # the second time round: both remembered
    long_statement = "SELECT COUNT(*) FROM marks WHERE student IN (" + ", ".join(["%s"] * 1100) + ")"  # > 4 KiB
    with wrapper.cursor() as cursor:
        cursor.execute(long_statement, ["ann"] * 1100)
        assert cursor.fetchone()[0] == 1
    assert qmark_statement.cache_info().currsize == 2  # rewritten, not remembered


def test_a_connection_is_kept_as_the_file_it_was_opened_on(database: ConnectionHandler, tmp_path: Path) -> None:
    """Django renames the file in the shared settings to make a test database: a connection opened before is
    kept as the file it is open on, never handed to one asking for the new file."""
    first = fresh(database)
    opened = raw(first)
    old_key = first._kept_key
    first.settings_dict["NAME"] = str(tmp_path / "renamed.sqlite3")
    first.close()
    assert kept.by_name[old_key] == [opened]
    renamed = fresh(database)
    renamed.settings_dict["NAME"] = str(tmp_path / "renamed.sqlite3")
    assert raw(renamed) is not opened
    renamed.close()


def between_requests(wrapper: Any) -> None:
    """What Django does to every connection at a request's end and the next one's start (close_old_connections)."""
    wrapper.close_if_unusable_or_obsolete()


@pytest.fixture
def kept_open(database: ConnectionHandler) -> Any:
    """A connection kept open between requests, as settings.py keeps a database file's (CONN_MAX_AGE=None)."""
    wrapper = fresh(database)
    wrapper.settings_dict["CONN_MAX_AGE"] = None
    return wrapper


def test_a_connection_kept_between_requests_stays_open(kept_open: Any) -> None:
    opened = raw(kept_open)
    between_requests(kept_open)
    assert kept_open.connection is opened
    assert count(kept_open) == 0


@pytest.mark.parametrize("ended", [True, False], ids=["between requests", "without it"])
def test_between_requests_a_cursor_left_unread_is_ended(kept_open: Any, tmp_path: Path, ended: bool) -> None:
    """The statement a request left unread would show every later request on that connection the database as
    it was then; what a close ended is ended between requests (and without it, the old snapshot shows: the
    check can fail)."""
    with kept_open.cursor() as cursor:
        cursor.executemany("INSERT INTO marks VALUES (%s)", [("ann",), ("ben",), ("cleo",)])
    unread = kept_open.cursor()
    unread.execute("SELECT student FROM marks")
    unread.fetchone()
    if ended:
        between_requests(kept_open)
    writer = sqlite3.connect(str(tmp_path / "kept.sqlite3"))
    writer.execute("INSERT INTO marks VALUES ('dan')")
    writer.commit()
    writer.close()
    assert count(kept_open) == (4 if ended else 3)


def test_between_requests_a_transaction_begun_outside_django_is_rolled_back(kept_open: Any) -> None:
    opened = raw(kept_open)
    opened.execute("BEGIN")
    opened.execute("INSERT INTO marks VALUES ('ann')")
    between_requests(kept_open)
    assert kept_open.connection is opened
    assert not opened.in_transaction
    assert count(kept_open) == 0


def test_a_connection_left_out_of_autocommit_is_still_closed_between_requests(kept_open: Any) -> None:
    opened = raw(kept_open)
    kept_open.set_autocommit(False)
    between_requests(kept_open)
    assert kept_open.connection is None
    assert kept.take(kept_open._kept_key) is opened  # handed on clean, as any closed connection


def test_a_read_straight_on_the_connection_gives_the_rows_a_cursor_gives(database: ConnectionHandler) -> None:
    wrapper = fresh(database)
    with wrapper.cursor() as cursor:
        cursor.executemany("INSERT INTO marks VALUES (%s)", [("ann",), ("ben",), ("100%",)])
        cursor.execute("SELECT student FROM marks WHERE student <> %s AND student NOT LIKE '1%%' ORDER BY 1", ["ben"])
        through_a_cursor = cursor.fetchall()
    query = "SELECT student FROM marks WHERE student <> %s AND student NOT LIKE '1%%' ORDER BY 1"
    assert wrapper.fetch_all(query, ["ben"]) == through_a_cursor == [("ann",)]


def test_a_read_watched_by_the_query_log_or_a_wrapper_is_left_to_a_cursor(database: ConnectionHandler) -> None:
    """assertNumQueries, DEBUG's query log and execute wrappers see every query: fetch_all declines, runs
    nothing, and the caller's cursor runs it where they see it."""
    wrapper = fresh(database)
    seen: list[str] = []

    def watch(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    with wrapper.execute_wrapper(watch):
        assert wrapper.fetch_all("SELECT 1", []) is None
    wrapper.force_debug_cursor = True
    assert wrapper.fetch_all("SELECT 1", []) is None
    wrapper.force_debug_cursor = False
    assert wrapper.fetch_all("SELECT 1", []) == [(1,)]
    assert seen == [] and wrapper.queries_log == type(wrapper.queries_log)()


def test_a_read_straight_on_the_connection_fails_as_a_cursor_fails(database: ConnectionHandler) -> None:
    from django.db import OperationalError

    wrapper = fresh(database)
    with pytest.raises(OperationalError):
        wrapper.fetch_all("SELECT nope FROM marks", [])
    assert wrapper.errors_occurred  # checked (is_usable) before the connection is used again


async def test_a_read_straight_on_the_connection_is_refused_on_a_running_loop(database: ConnectionHandler) -> None:
    from django.core.exceptions import SynchronousOnlyOperation

    wrapper = fresh(database)
    with pytest.raises(SynchronousOnlyOperation):
        wrapper.fetch_all("SELECT 1", [])
