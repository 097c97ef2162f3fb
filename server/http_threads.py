"""HTTP requests on kept threads: Django's ASGI handler without a new OS thread per request.

Django's ASGI handler runs each request's synchronous part (the middleware, the view, the ORM) in a
ThreadSensitiveContext of its own, which asgiref serves with a new single-thread executor: one thread started
and joined per request, about a sixth of GET /auth/me's busy samples under py-spy (docs/benchmark.md, "HTTP").
This wraps the handler in a context whose executor is kept from an earlier request (asgiref's public
ThreadSensitiveContext(executor=)), which Django's inner context then uses. Each request still has a thread to
itself while it runs, as before: a thread goes back to the idle list only once everything submitted to it has
run, so a request whose client left while its view was still running never delays the next one.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Threads kept idle between requests; a burst beyond it starts threads as Django would, and ends them after.
KEEP_IDLE = 32


class RequestThread(ThreadPoolExecutor):
    """One request's thread: counts the work submitted to it, to be handed on only once that has all run."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="http")
        self._lock = threading.Lock()  # submits come from the event loop, completions from the thread
        self._pending = 0
        self._when_idle: Callable[[], None] | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1
            then = self._when_idle if self._pending == 0 else None
            if then is not None:
                self._when_idle = None
        if then is not None:
            then()

    def when_idle(self, then: Callable[[], None]) -> None:
        """Call `then` once nothing submitted is left to run: now, or when the last of it finishes."""
        with self._lock:
            if self._pending:
                self._when_idle = then
                return
        then()


class KeptThreads:
    """An ASGI application: `app`, each call in a ThreadSensitiveContext whose thread outlives the call — but
    for a call `app.serves_on_loop(scope)` says needs no thread (server/http_handler.py): that one calls `app`
    as it is."""

    def __init__(self, app: ASGIApp, keep_idle: int = KEEP_IDLE) -> None:
        self.app = app
        self.keep_idle = keep_idle
        # Appended from worker threads (when_idle), popped on the event loop: a deque's ends are thread-safe.
        self.idle: deque[RequestThread] = deque()
        self.serves_on_loop: Callable[[Scope], bool] = getattr(app, "serves_on_loop", lambda scope: False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.serves_on_loop(scope):  # a thread lent and handed back unused, and its context: ~3 % of the call
            await self.app(scope, receive, send)
            return
        try:
            executor = self.idle.pop()
        except IndexError:
            executor = RequestThread()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.app(scope, receive, send)
        finally:
            executor.when_idle(lambda: self._release(executor))

    def _release(self, executor: RequestThread) -> None:
        if len(self.idle) < self.keep_idle:
            self.idle.append(executor)
        else:
            executor.shutdown(wait=False)
