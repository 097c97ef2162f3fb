"""Django's ASGI handler with one thread hop per request instead of five.

Every view and middleware here is synchronous. Django's ASGIHandler still runs the request in async mode: the
`request_started` signal on a thread, back to the event loop; the sync middleware chain on a thread; back to the
loop (async_to_sync) for the URL resolution; the view on a thread again; after the response is sent,
`response.close()` (the `request_finished` signal: the database connection goes back) on a thread once more.
Each hop is a cross-thread hand-off and a turn of the event loop — most of GET /auth/me's time under py-spy
(docs/benchmark.md, "HTTP").

`OneHopHandler` loads the middleware in sync mode (as Django's WSGI handler does) and serves the request in ONE
call on the request's thread: the `request_started` signal, the middleware chain and the view, and — for a
response whose content is already in memory (not streaming) — `close()`. The body is still read, and the
response sent, on the event loop, and a client that leaves while its request is served is noticed as Django
notices it (the same `listen_for_disconnect` task). Streaming responses (static files among them) are sent as
Django sends them and closed after, as there. Should closing fail, the answer is sent all the same and the
error raised after, as Django raises it after sending.

Where the database is embedded (SQLite: a local file, no network, readers never wait in WAL mode), the operations
declared `light` (common/api.py: a read of a few rows, nothing else) are served without any thread hop, on the
event loop itself, as the spec's own stack serves every request (Express with better-sqlite3's synchronous calls) —
and with no task beside it listening for the client's disconnect: the request is served before anything else runs
on the loop, so there is nothing to cancel. The hop to a thread and back — a cross-thread hand-off for the
interpreter lock each way, with up to 32 request threads contending for it — cost more than the request itself:
serving those routes on the loop gave 2.3–2.9× their requests per second (docs/benchmark.md, "HTTP"). A read whose
cost grows with what it reads — a class's report — is declared `WhileQuick` (common/api.py): served on a thread the
first time, then on the loop while its last answer took at most 10 ms of CPU, and on a thread again once it grows
past that (QuickRequests). Everything else keeps its thread: password hashing, writes and what they publish,
exports, imports; and every route on PostgreSQL or MongoDB, where a query waits on the network and a database outage
must not stop the loop. At most HTTP_THREADS requests are on threads at once; the others wait their turn: threads
beyond the cores only contend for the interpreter lock (a report under 32 connections cost twice the CPU with four
at once as with two).

The API's own operations (common.api.route) pass through a shorter middleware chain (api_middleware): MIDDLEWARE
without what only the admin, the console and the docs use (sessions, CSRF, login, messages, static files, the
page policy: attendance_site/settings.py says why each does nothing for a JSON request). The same headers and
answers (tested route by route), a third less of a small request's own time. Everything else — pages, the admin,
static files, unknown paths — passes through the whole of MIDDLEWARE.

It overrides ASGIHandler.handle and uses its helpers (`read_body`, `create_request`, `send_response`,
`listen_for_disconnect`): written for Django 5.2. `http_application()` returns it when the installed Django is
that release line and the helpers are there, else Django's own handler with a warning (slower, never wrong), as
the server extensions do (server/gate.py); `LIVE_FAST_PATH=0` also chooses Django's.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import django
from asgiref.sync import sync_to_async
from django.apps import apps
from django.conf import settings
from django.core import signals
from django.core.cache import caches, close_caches
from django.core.cache.backends.base import BaseCache
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed, RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import FileResponse, HttpRequest, HttpResponseBase
from django.urls import Resolver404, ResolverMatch, get_resolver, set_script_prefix
from django.utils.module_loading import import_string

from common.api import WhileQuick
from common.loops import PerLoop
from server.gate import missing_attributes, version_mismatches
from server.on_loop import embedded_database, event_loop_hidden

logger = logging.getLogger(__name__)

WRITTEN_FOR = {"django": "5.2.*"}
RELIES_ON = ("read_body", "create_request", "send_response", "listen_for_disconnect", "chunk_size")
# What ListedMiddlewareHandler sets up as BaseHandler.load_middleware does: the view's call, wrapped by the chain,
# and the chain and hooks that BaseHandler.get_response and _get_response read.
RELIES_ON_BASE = (
    "resolve_request",
    "_get_response",
    "_middleware_chain",
    "_view_middleware",
    "_template_response_middleware",
    "_exception_middleware",
)

class CheckedHostRequest(ASGIRequest):
    """Django's ASGI request, whose Host is checked against ALLOWED_HOSTS once: the API's Host check
    (common.api.BadHostMiddleware) and CommonMiddleware each ask get_host(), and its parse and check were ~1.5 % of
    a small request. Asked again, the same Host header (and forwarded host) answers without its check; a changed
    one is checked anew; a refused one is refused each time."""

    _checked_host: str | None = None

    def get_host(self) -> str:
        checked = self._checked_host
        if checked is not None and checked == self._get_raw_host():  # type: ignore[attr-defined]  # (not in stubs)
            return checked
        host: str = super().get_host()
        self._checked_host = host
        return host


class OneHopHandler(ASGIHandler):
    """Django's ASGI handler, the synchronous part of each request served in one call on its thread."""

    request_class = CheckedHostRequest

    def __init__(self, light_on_loop: bool | None = None) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        # path → how the API's operation at that path resolves (None for any other path); paths carry ids, so
        # the memory is bounded. Each path is resolved once, not on every request (~5 % of GET /auth/me).
        self.api_matches = functools.lru_cache(maxsize=4096)(api_match)
        self.api = ListedMiddlewareHandler(api_middleware(), resolve=self.api_match)
        # Light operations on the event loop: where the database is embedded, unless told.
        self.light_on_loop = embedded_database() if light_on_loop is None else light_on_loop
        # Requests on threads at once (HTTP_THREADS), per event loop (an asyncio semaphore belongs to one).
        self.threads = PerLoop(lambda: asyncio.Semaphore(settings.HTTP_THREADS))
        # What WhileQuick requests last cost, to serve them on the loop while that was little.
        self.quick = QuickRequests()
        # The context light requests run in, per event loop: kept from one to the next, as a WSGI thread keeps
        # its thread-locals (see serve_on_loop).
        self.light_context = PerLoop(light_context)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.serves_on_loop(scope):  # no thread for anything to be sensitive to (ASGIHandler's context)
            await self.handle(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    def serves_on_loop(self, scope: dict[str, Any]) -> bool:
        """Is this request served on the event loop, without a thread (a light operation, where the database
        is embedded)? Also asked by KeptThreads (server/http_threads.py), which then lends it none. Decided once
        per request and kept in its scope: each asking gets the same answer (a WhileQuick operation's could
        change meanwhile)."""
        on_loop: bool | None = scope.get(SERVES_ON_LOOP)
        if on_loop is None:
            on_loop = scope[SERVES_ON_LOOP] = self.light_on_loop and scope["type"] == "http" and self.light_now(scope)
        return on_loop

    def light_now(self, scope: dict[str, Any]) -> bool:
        """Is this request's operation light — declared so, or WhileQuick and quick when last asked the same?
        A WhileQuick request is marked to be timed (serve), whichever way it is served."""
        light = self.lightness(scope["method"], scope["path"])
        if not isinstance(light, WhileQuick):
            return light
        path, query = scope["path"], scope.get("query_string", b"")
        if len(path) + len(query) > QUICK_REQUEST_LENGTH:  # not kept (memory): on a thread, as a first time is
            return False
        asked = scope[TIMED_AS] = (path, query)
        return self.quick.is_quick(asked, light.seconds)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        served = Served()
        if self.serves_on_loop(scope):
            await self.serve_on_loop(scope, body_file, served, send)
            return

        async def process_request() -> None:
            await self.on_a_thread(scope, body_file, served)
            assert served.response is not None
            try:
                await self.send_response(served.response, send)
            except asyncio.CancelledError:  # the client left while the response was being sent
                pass
            if served.close_error is not None:  # sent, then raised: what Django does when close() fails
                raise served.close_error

        # As Django does: the first to finish of the request and a disconnect; a request whose client left is
        # cancelled (its thread finishes the call it is in; the connection goes back at request_finished).
        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        serving = asyncio.create_task(process_request())
        tasks: list[asyncio.Task[None]] = [listening, serving]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        # request_finished once, whichever way the request ended: on the request's thread, so after its call,
        # when that call did not send it (a streaming response, or a call the client left; one ended normally has
        # nothing more to do).
        if serving.cancelled() or not served.closed:
            await sync_to_async(self.finish, thread_sensitive=True)(served)
        body_file.close()

    async def serve_on_loop(self, scope: dict[str, Any], body_file: Any, served: Served, send: Any) -> None:
        """A light operation: served in one synchronous call on the loop, then sent. Nothing to race a
        disconnect against (Django's listening task and the request's own: ~3 % of a light request): the
        request is served before anything else runs, and a client that left meanwhile is noticed by the server
        when the answer is sent to it.

        Its synchronous part runs in one context kept for the loop's light requests, not in the request task's
        own: what Django keeps in asgiref Locals that are not thread-critical (the caches, the URLconf) lives in
        context variables, which each task would start afresh: request_finished raised and caught an
        AttributeError per cache alias to find it had no handle to close (~2 % of GET /auth/me), and a handle one
        request made, the next made again. Kept, they live from one request to the next as in a WSGI thread, for which
        Django is written: its request signals reset what is per request (queries, the URLconf)."""
        try:
            context = self.light_context.get()
            try:
                with event_loop_hidden():  # one synchronous call: nothing else runs on the loop meanwhile
                    context.run(self.serve, scope, body_file, served)
                assert served.response is not None
                await self.send_response(served.response, send)
            finally:
                # request_finished once, whichever way the request ended: a streaming answer (none is light today)
                # is closed once sent, as Django does; a call that raised before its answer gets it all the same.
                if not served.closed:
                    with event_loop_hidden():
                        context.run(self.finish, served)
            if served.close_error is not None:  # sent, then raised: what Django does when close() fails
                raise served.close_error
        finally:
            body_file.close()

    def api_match(self, path: str) -> ResolverMatch | None:
        """How the API route at `path` resolves (None for any other path), kept by the URLconf it was resolved
        with: a test's own URLconf (override_settings) is another key."""
        return self.api_matches(settings.ROOT_URLCONF, path)

    def operations(self, path: str) -> dict[str, Any] | None:
        """The API operations of `path` by method (common.api.route); None for anything else (the admin, static
        files, pages, an unknown path)."""
        match = self.api_match(path)
        operations: dict[str, Any] | None = None if match is None else getattr(match.func, "operations", None)
        return operations

    def lightness(self, method: str, path: str) -> bool | WhileQuick:
        """How light `method` on `path` is declared (common.api.endpoint): False for anything not an operation."""
        operation = (self.operations(path) or {}).get(method)
        light: bool | WhileQuick = getattr(operation, "light", False)
        return light

    async def on_a_thread(self, scope: dict[str, Any], body_file: Any, served: Served) -> None:
        """serve() on the request's thread, once fewer than HTTP_THREADS requests are on threads. The slot is
        given back when the thread's call ends, not when this is cancelled (its client left): the thread runs
        on regardless, and the next request must not start beside it."""
        threads = self.threads.get()
        await threads.acquire()
        call = asyncio.ensure_future(sync_to_async(self.serve, thread_sensitive=True)(scope, body_file, served))

        def ended(call: asyncio.Future[None]) -> None:
            threads.release()
            if not call.cancelled():
                call.exception()  # retrieved: raised below, or of no one's concern once the client left

        call.add_done_callback(ended)
        await asyncio.shield(call)

    def serve(self, scope: dict[str, Any], body_file: Any, served: Served) -> None:
        """On the request's thread: request_started, the response, and its close() when nothing of it is left
        to produce (a streaming response is closed once sent, by finish)."""
        timed_as = scope.get(TIMED_AS)
        if timed_as is None:
            self.respond(scope, body_file, served)
            return
        # On a thread, its own CPU: what it would hold the loop for (its wall time there counts the waits for the
        # interpreter lock too). On the loop, the longer of that and the wall time: what it did hold the loop for,
        # a read from disk or a wait for the lock included.
        on_loop = scope.get(SERVES_ON_LOOP) is True
        cpu, wall = time.thread_time(), time.perf_counter()
        self.respond(scope, body_file, served)
        cost = time.thread_time() - cpu
        if on_loop:
            cost = max(cost, time.perf_counter() - wall)
        # Only a full answer's cost is kept: a refusal (no token, another teacher's class, no such class) is quick
        # whatever the report would cost, and must not send the owner's next one to the loop.
        if served.response is not None and served.response.status_code == HTTPStatus.OK:
            self.quick.took(timed_as, cost)

    def respond(self, scope: dict[str, Any], body_file: Any, served: Served) -> None:
        set_script_prefix(get_script_prefix(scope))  # in the context the request is served in (a light one's kept)
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            assert error_response is not None  # (create_request returns one or the other)
            response: HttpResponseBase = error_response
        else:
            handler = self if self.operations(request.path_info) is None else self.api
            response = handler.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        served.response = response
        if not response.streaming:
            served.closed = True
            try:
                response.close()  # its request_finished: the database connection goes back before the answer
            except Exception as error:  # a failing request_finished receiver must not cost the answer
                served.close_error = error

    def finish(self, served: Served) -> None:
        """After the request: a streaming response is closed, sent or dropped because its client left (its
        files and iterator with it; request_finished); a request whose client left before it had a response
        gets request_finished. Nothing when its call already closed it."""
        if served.closed:
            return
        served.closed = True
        if served.response is not None:
            served.response.close()
        else:
            signals.request_finished.send(sender=self.__class__)


# Where a request's scope keeps, once decided, whether it is served on the loop; and for a WhileQuick operation,
# the request its cost is kept under (serve).
SERVES_ON_LOOP = "attendance.serves_on_loop"
TIMED_AS = "attendance.timed_as"
# The longest request (path and query string) whose cost is kept: 4,096 of them at most ~3 MB with the entries'
# own overhead; a longer one (no report's real query is) is served on a thread every time.
QUICK_REQUEST_LENGTH = 512


class QuickRequests:
    """What each recent WhileQuick request (path and query string) cost the last time it was answered in full, in
    seconds (OneHopHandler.serve); the least recently served are forgotten beyond `kept`. Written from request
    threads and the loop under a lock; read on the loop without one — one lookup of a key of strings, which runs no
    Python code and so is atomic under the interpreter lock."""

    def __init__(self, kept: int = 4096) -> None:
        self.kept = kept
        self._cost: OrderedDict[tuple[str, bytes], float] = OrderedDict()
        self._lock = threading.Lock()

    def is_quick(self, asked: tuple[str, bytes], limit: float) -> bool:
        """Did `asked` take at most `limit` last time? Not if it was never served (or long ago)."""
        cost = self._cost.get(asked)
        return cost is not None and cost <= limit

    def took(self, asked: tuple[str, bytes], seconds: float) -> None:
        with self._lock:
            self._cost[asked] = seconds
            self._cost.move_to_end(asked)
            if len(self._cost) > self.kept:
                self._cost.popitem(last=False)


class Served:
    """What a request's call produced: its response, whether it is closed, and what closing it raised."""

    def __init__(self) -> None:
        self.response: HttpResponseBase | None = None
        self.closed = False
        self.close_error: Exception | None = None


class ListedMiddlewareHandler(BaseHandler):
    """A handler whose middleware chain is the given list, loaded in sync mode as BaseHandler.load_middleware
    loads MIDDLEWARE (which it reads from the settings alone): the same adaptation of async middleware and
    hooks, the same hooks in the same order."""

    def __init__(self, middleware: list[str], resolve: Callable[[str], ResolverMatch | None] | None = None) -> None:
        super().__init__()
        self.resolve = resolve
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        view = self._get_response  # type: ignore[attr-defined]  # (not in the stubs)
        handler = convert_exception_to_response(view)
        handler_is_async = False
        for path in reversed(middleware):
            factory = import_string(path)
            can_sync = getattr(factory, "sync_capable", True)
            if not can_sync and not getattr(factory, "async_capable", False):
                raise ImproperlyConfigured(f"Middleware {path} must have at least one of sync_capable/async_capable")
            middleware_is_async = not can_sync
            try:
                adapted = self.adapt_method_mode(
                    middleware_is_async, handler, handler_is_async, debug=settings.DEBUG, name=f"middleware {path}"
                )
                instance = factory(adapted)
            except MiddlewareNotUsed:
                continue
            if instance is None:
                raise ImproperlyConfigured(f"Middleware factory {path} returned None.")
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, self.adapt_method_mode(False, instance.process_view))
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(
                    self.adapt_method_mode(False, instance.process_template_response)
                )
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(self.adapt_method_mode(False, instance.process_exception))
            handler = convert_exception_to_response(instance)
            handler_is_async = middleware_is_async
        self._middleware_chain = self.adapt_method_mode(False, handler, handler_is_async)

    def resolve_request(self, request: HttpRequest) -> ResolverMatch:
        """Django's resolve_request, answered by `resolve` (a path's match, kept) where it can be: the request
        names no URLconf of its own, and no view middleware is given the match's arguments (which could change
        them). A kept match is shared by the requests to its path; Django and the views only read it."""
        match = None
        if self.resolve is not None and not hasattr(request, "urlconf") and not self._view_middleware:
            match = self.resolve(request.path_info)
        if match is None:
            return super().resolve_request(request)
        request.resolver_match = match
        return match


def light_context() -> contextvars.Context:
    """A context for an event loop's light requests (OneHopHandler.serve_on_loop): a copy of the current one,
    with Django's cache handles made in it once. The request_finished signal closes the handles a context has
    (`caches.close_all`); finding none, it raises and catches an AttributeError per cache alias, every request.
    (The caches' close() does nothing here: local memory, and Django's Redis client keeps its pool.)"""
    context = contextvars.copy_context()
    context.run(caches.all)
    return context


def api_middleware() -> list[str]:
    """The API's operations' chain: MIDDLEWARE as it is now, without PAGE_ONLY_MIDDLEWARE (attendance_site/settings.py
    says why each of those does nothing for them), in the same order."""
    return [name for name in settings.MIDDLEWARE if name not in settings.PAGE_ONLY_MIDDLEWARE]


def api_match(urlconf: str, path: str) -> ResolverMatch | None:
    """How `path` resolves in `urlconf`, as Django resolves it, when it is an API route (common.api.route: its view
    has `operations`); None for anything else (the admin, static files, pages, an unknown path)."""
    try:
        match = get_resolver(urlconf).resolve(path)
    except Resolver404:
        return None
    return match if hasattr(match.func, "operations") else None


def cache_close_needed(caches_setting: dict[str, Any]) -> bool:
    """Does any configured cache backend have a close() of its own? Django's base close() does nothing (the
    local-memory and Redis backends keep it: Redis's client keeps its pool); memcached's closes its connections."""
    return any(import_string(cache["BACKEND"]).close is not BaseCache.close for cache in caches_setting.values())


def close_caches_only_where_needed() -> None:
    """Django's `close_caches` receiver of request_finished closes every cache a request used — a no-op call per
    cache, found through the cache handler's asgiref Local (a lock and a context lookup each: ~2.5 % of a small
    request). Disconnected while no configured backend has anything to close; connected again (as Django
    connects it) should one be configured that has."""
    if cache_close_needed(settings.CACHES):
        signals.request_finished.connect(close_caches)
    else:
        signals.request_finished.disconnect(close_caches)


@receiver(setting_changed)
def _caches_changed(setting: str, **_: Any) -> None:
    if setting == "CACHES" and _closes_only_where_needed:
        close_caches_only_where_needed()


_closes_only_where_needed: list[bool] = []  # [True] once http_application() chose OneHopHandler


def http_application() -> ASGIHandler:
    """The HTTP handler for this process: OneHopHandler where it was written for the installed Django, else
    Django's own (with one warning saying why)."""
    if not apps.ready:  # (set up again, Django would configure logging again)
        django.setup(set_prefix=False)
    reason = _why_not()
    if reason is None:
        close_caches_only_where_needed()
        _closes_only_where_needed[:] = [True]
        return OneHopHandler()
    logger.warning("HTTP runs on Django's own ASGI handler (one thread hop per step): %s", reason)
    _closes_only_where_needed.clear()  # Django's own wiring, whatever an earlier application did
    signals.request_finished.connect(close_caches)
    return ASGIHandler()


def _why_not() -> str | None:
    if not settings.LIVE_FAST_PATH:
        return "LIVE_FAST_PATH=0"
    problems = (
        version_mismatches(WRITTEN_FOR)
        + missing_attributes(ASGIHandler, RELIES_ON)
        + missing_attributes(BaseHandler, RELIES_ON_BASE)
    )
    return ", ".join(problems) or None

