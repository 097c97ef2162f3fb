"""Database calls from the WebSocket consumer.

Socket events run their database work on a small pool of threads of their own (DB_SOCKET_THREADS), so that one
slow statement — a DONE waiting on a lock — stalls only the event that made it, not every socket of the process
(as asgiref's single thread-sensitive thread did). Each socket still handles its events one at a time (the
consumer awaits each before reading the next frame), so their order is kept.

Django's connections are per thread: each pool thread keeps its own from one event to the next, instead of
opening and closing one per event as Channels' database_sync_to_async does with CONN_MAX_AGE=0 (the right
setting for HTTP under ASGI, where requests get threads of their own and persistent connections would pile up).
A connection that has failed, or that went unused for a while and no longer answers, is replaced.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, Future
from contextlib import suppress
from functools import lru_cache, wraps
from typing import Any, ParamSpec, TypeVar, cast

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from server.on_loop import event_loop_hidden, in_memory_sqlite, socket_reads_on_loop

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger(__name__)

# Per pool thread: when its connections were last used, and the last failure generation it has checked for.
_thread_state = threading.local()
# Bumped when a call meets a database error: a server restart breaks every thread's connection at once, so each
# thread checks its own before its next use, and at most the calls that met the break fail (not one per thread).
_failures = 0


def connection_usable(connection: BaseDatabaseWrapper) -> bool:
    """One round trip to the server: does this open connection still answer?

    SQL backends have `is_usable()`. django-mongodb-backend does not implement it (NotImplementedError): its
    "connection" is pymongo's MongoClient, a pool shared by every thread, which `close()` deliberately leaves
    open. A `ping` on it does the same job there: a dead pooled socket fails it, pymongo discards that pool's
    sockets, and the next query opens a fresh one. Any error while checking counts as "not usable"."""
    try:
        if connection.vendor == "mongodb":
            connection.connection.admin.command("ping")
            return True
        return bool(connection.is_usable())
    except Exception:
        logger.warning("database connection %r failed its check; replacing it", connection.alias, exc_info=True)
        return False


def _drop_unusable_connections() -> None:
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection_usable(connection):
            # The next query opens a new connection (on MongoDB: close() keeps the pool, which already
            # dropped its dead sockets).
            with suppress(Exception):
                connection.close()


def _run(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    global _failures
    state = _thread_state
    try:
        # An idle connection is checked (one round trip) before it is used again; the period is a setting
        # (DB_IDLE_CHECK_SECONDS) so that tests can go idle for longer than it in seconds.
        idle = time.monotonic() - getattr(state, "last_used", 0.0) > settings.DB_IDLE_CHECK_SECONDS
        if idle or getattr(state, "failures", 0) != _failures:
            state.failures = _failures
            _drop_unusable_connections()
        try:
            return fn(*args, **kwargs)
        except DatabaseError:
            _failures += 1  # racing increments may merge: any change makes the other threads check
            state.failures = _failures
            _drop_unusable_connections()
            raise
    finally:
        # Whatever happened, even a check that raised: the next event runs its query rather than failing
        # in the check again.
        state.last_used = time.monotonic()


class _StopWorker:
    """Sent to a pool thread: close your connections and exit."""


class DatabaseThreads(Executor):
    """At most `size` threads, started as calls need them and kept (with their connections) afterwards.

    Unlike ThreadPoolExecutor, a thread counts as idle before the caller gets its result, so that calls made
    one after the other run on one thread (and one connection) rather than opening another."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | _StopWorker] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.idle = 0

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        future: Future[R] = Future()
        with self.lock:
            if self.idle:
                self.idle -= 1
            elif len(self.threads) < self.size:
                thread = threading.Thread(target=self._work, name=f"live-db-{len(self.threads)}", daemon=True)
                self.threads.append(thread)
                thread.start()
            # Otherwise every thread is busy: the call waits for the first to finish.
        self.jobs.put((future, lambda: fn(*args, **kwargs)))
        return future

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if isinstance(job, _StopWorker):
                with suppress(Exception):
                    connections.close_all()
                return
            future, call = job
            if not future.set_running_or_notify_cancel():
                self._now_idle()
                continue
            try:
                result = call()
            except BaseException as error:
                self._now_idle()
                future.set_exception(error)
            else:
                self._now_idle()
                future.set_result(result)

    def _now_idle(self) -> None:
        with self.lock:
            self.idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Each thread closes its connections and exits (a thread busy with a call does after it)."""
        with self.lock:
            threads, self.threads, self.idle = self.threads, [], 0
        for _ in threads:
            self.jobs.put(_StopWorker())
        if wait:
            for thread in threads:
                thread.join(timeout=30)


_pool: DatabaseThreads | None = None
_pool_lock = threading.Lock()


def pool_size() -> int:
    """DB_SOCKET_THREADS; one thread for an in-memory SQLite database (the in-process tests'): its connections
    share one cache whose table locks fail at once ("database table is locked") instead of waiting for the busy
    timeout, so a second thread's write beside a first would fail."""
    if any(in_memory_sqlite(database) for database in settings.DATABASES.values()):
        return 1
    return max(1, int(settings.DB_SOCKET_THREADS))


def database_threads() -> DatabaseThreads:
    """The process's pool, started on first use (again after close_db_connections)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = DatabaseThreads(pool_size())
        return _pool


Deferred = Callable[[], Awaitable[None]]


def defer_to_caller(job: Deferred) -> bool:
    """Inside a db_call: have the calling coroutine run `job` on its event loop once the call is over (True).
    Elsewhere (a request's thread, a shell) nothing is deferred (False).

    live.publisher hands its broadcasts over this way: a commit's callback runs on the database thread, and the
    hub and the socket it came from belong to the loop; and the socket's own frame goes out before it reads
    its next event, so the order of its frames stays that of its events."""
    jobs: list[Deferred] | None = getattr(_thread_state, "deferred", None)
    if jobs is None:
        return False
    jobs.append(job)
    return True


def _run_deferring(
    fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs
) -> tuple[R | None, BaseException | None, list[Deferred]]:
    state = _thread_state
    state.deferred = []
    try:
        return _run(fn, *args, **kwargs), None, state.deferred
    except Exception as error:  # what committed before the error is still announced
        return None, error, state.deferred
    finally:
        state.deferred = None


def made_once(make: F) -> F:
    """Each function's wrapper made once and kept: call sites write `db_call(selectors.x)(...)` on every event,
    and a function put in place of another (tests do) gets a wrapper of its own. For module-level functions:
    up to 256 are kept, each referenced (a bound method would keep its object alive)."""
    return cast(F, lru_cache(maxsize=256)(make))


@made_once
def db_call(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`fn` as a coroutine function, run on one of the database threads with its kept connection."""

    @wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        # sync_to_async (not a bare run_in_executor): context variables, and async_to_sync inside `fn` reaches
        # this event loop. Its annotation names ThreadPoolExecutor; any Executor is what it uses.
        executor = cast(Any, database_threads())
        result, error, jobs = await sync_to_async(_run_deferring, thread_sensitive=False, executor=executor)(
            fn, *args, **kwargs
        )
        for job in jobs:
            await job()
        if error is not None:
            raise error
        return cast(R, result)

    return call


@made_once
def loop_read(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """db_call for a brief read (a few rows, nothing written, nothing published): where the database is an
    embedded file (server/on_loop.py), run on the event loop itself with a kept connection
    (attendance_site/sqlite3), as HTTP's light operations are; elsewhere on the database threads as db_call runs
    it. The connect burst of a class and every MY_ATTENDANCE read this way: the hop to a thread and back cost
    more than the read."""
    threaded = db_call(fn)

    @wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        if not socket_reads_on_loop():
            return await threaded(*args, **kwargs)
        with event_loop_hidden():  # one synchronous call: nothing else runs on the loop meanwhile
            return fn(*args, **kwargs)

    return call


def _stop_pool() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True)


async def close_db_connections() -> None:
    """Close the database threads' kept connections (test teardown, before the test database is dropped): the
    pool's threads exit (the next call starts new ones), and asgiref's thread-sensitive thread closes its own."""
    await sync_to_async(_stop_pool, thread_sensitive=False)()
    await sync_to_async(connections.close_all, thread_sensitive=True)()
