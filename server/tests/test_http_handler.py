"""server.http_handler: each HTTP request's synchronous part in one call on its thread, with Django's behaviour —
the request signals once each, a streaming response closed only once it is sent, a client that leaves noticed —
and Django's own handler where it was not written for the installed Django or LIVE_FAST_PATH=0.

In-process, driven as an ASGI server drives it (channels.testing.HttpCommunicator); every wire test serves
through it too (attendance_site/asgi.py), and CI's plain pass (LIVE_FAST_PATH=0) through Django's own.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from asgiref.sync import SyncToAsync
from channels.testing import HttpCommunicator
from django.core import signals
from django.core.cache import caches, close_caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import DisallowedHost, SynchronousOnlyOperation
from django.core.handlers.asgi import ASGIHandler
from django.db import connection
from django.http import HttpResponse, StreamingHttpResponse
from django.http import request as http_request
from django.test import RequestFactory
from django.urls import URLResolver, get_resolver, get_script_prefix, include, path, set_urlconf

from accounts.models import User
from common.api import WhileQuick
from server import http_handler
from server.http_handler import CheckedHostRequest, OneHopHandler, http_application
from tests.support import auth, in_thread, make_class, make_user

pytestmark = pytest.mark.django_db(transaction=True)


class Signals:
    """The request signals sent while it is connected: (name, thread name) in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def started(self, **_: Any) -> None:
        self.sent.append(("started", threading.current_thread().name))

    def finished(self, **_: Any) -> None:
        self.sent.append(("finished", threading.current_thread().name))


@pytest.fixture
def request_signals() -> Iterator[Signals]:
    seen = Signals()
    signals.request_started.connect(seen.started)
    signals.request_finished.connect(seen.finished)
    yield seen
    signals.request_started.disconnect(seen.started)
    signals.request_finished.disconnect(seen.finished)


def get(
    path: str, headers: dict[str, str] | None = None, *, light_on_loop: bool = False, method: str = "GET"
) -> HttpCommunicator:
    """A request to a handler that serves every request on a thread (light ones too, unless told)."""
    return send_to(OneHopHandler(light_on_loop=light_on_loop), path, headers, method=method)


def send_to(
    handler: OneHopHandler, path: str, headers: dict[str, str] | None = None, *, method: str = "GET"
) -> HttpCommunicator:
    """A request to a given handler (get() makes one per request)."""
    encoded = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    return HttpCommunicator(handler, method, path, headers=[(b"host", b"localhost"), *encoded])


def count_hops(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Calls to a thread (asgiref's SyncToAsync) from now on: [count]."""
    hops = [0]
    call = SyncToAsync.__call__

    async def counted(self: SyncToAsync, *args: Any, **kwargs: Any) -> Any:
        hops[0] += 1
        return await call(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    return hops


def count_tasks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Tasks the handler starts (asyncio.create_task of its own coroutines, not the test client's) from now on:
    [count]."""
    tasks = [0]
    create_task = asyncio.create_task

    def counted(coro: Any, *args: Any, **kwargs: Any) -> Any:
        if "Handler." in coro.__qualname__ and not coro.__qualname__.endswith(".__call__"):  # (the client's)
            tasks[0] += 1
        return create_task(coro, *args, **kwargs)

    monkeypatch.setattr(asyncio, "create_task", counted)
    return tasks


@pytest.fixture
def cache_close_restored() -> Iterator[None]:
    """Django's wiring (close_caches connected, not managed) before and after the test: http_application() manages
    it, and the process's application (attendance_site/asgi.py) may have been made already."""
    http_handler._closes_only_where_needed.clear()
    signals.request_finished.connect(close_caches)
    yield
    http_handler._closes_only_where_needed.clear()
    signals.request_finished.connect(close_caches)


def closes_caches() -> bool:
    return close_caches in [receiver() for _, receiver, *_ in signals.request_finished.receivers]


class ClosingCache(LocMemCache):
    closed: ClassVar[int] = 0

    def close(self, **kwargs: Any) -> None:
        ClosingCache.closed += 1


def test_the_application_serves_http_through_one_hop(cache_close_restored: None) -> None:
    assert type(http_application()) is OneHopHandler


def test_a_request_s_end_closes_no_cache_while_none_has_anything_to_close(
    cache_close_restored: None, settings: Any
) -> None:
    assert closes_caches()  # Django's wiring, before the application is made
    http_application()
    assert not closes_caches()  # local memory (and Redis) caches: BaseCache.close, which does nothing
    configured = settings.CACHES
    settings.CACHES = {**configured, "closing": {"BACKEND": f"{__name__}.ClosingCache"}}
    assert closes_caches()  # one that closes something: Django's receiver again
    ClosingCache.closed = 0
    caches["closing"].get("x")
    signals.request_finished.send(sender=None)
    assert ClosingCache.closed == 1
    settings.CACHES = configured
    assert not closes_caches()


def test_django_s_own_handler_leaves_django_s_cache_close_as_it_is(
    cache_close_restored: None, settings: Any
) -> None:
    http_application()
    assert not closes_caches()
    settings.LIVE_FAST_PATH = False
    assert type(http_application()) is ASGIHandler
    assert closes_caches()  # connected again


def test_left_out_when_not_written_for_the_installed_django(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    monkeypatch.setattr(http_handler, "WRITTEN_FOR", {"django": "4.1.*"})
    with caplog.at_level(logging.WARNING, logger="server.http_handler"):
        handler = http_application()
    assert type(handler) is ASGIHandler
    assert "written for 4.1.*" in caplog.text


def test_left_out_when_a_helper_it_relies_on_is_gone(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    monkeypatch.setattr(http_handler, "RELIES_ON", (*http_handler.RELIES_ON, "read_whole_body"))
    with caplog.at_level(logging.WARNING, logger="server.http_handler"):
        assert type(http_application()) is ASGIHandler
    assert "ASGIHandler.read_whole_body" in caplog.text


def test_left_out_on_the_plain_path(settings: Any, caplog: Any) -> None:
    settings.LIVE_FAST_PATH = False
    with caplog.at_level(logging.WARNING, logger="server.http_handler"):
        assert type(http_application()) is ASGIHandler
    assert "LIVE_FAST_PATH=0" in caplog.text


async def test_a_request_is_served_with_each_signal_once_on_one_thread(request_signals: Signals) -> None:
    student = await in_thread(make_user, "student", name="Ann")
    response = await get("/auth/me", auth(student)).get_response()
    assert response["status"] == 200
    assert b'"name":"Ann"' in response["body"]
    [(started, started_on), (finished, finished_on)] = request_signals.sent
    assert (started, finished) == ("started", "finished")
    assert started_on == finished_on != threading.main_thread().name  # the request's thread, both


async def test_errors_keep_the_contract_envelope(request_signals: Signals) -> None:
    response = await get("/auth/me").get_response()
    assert response["status"] == 401
    assert response["body"].startswith(b'{"success":false')
    assert [name for name, _ in request_signals.sent] == ["started", "finished"]


def streamed(request: Any) -> StreamingHttpResponse:
    """A streaming answer whose last chunk notes which request signals were sent by then."""

    def chunks() -> Iterator[bytes]:
        yield b"one,"
        yield b"two,"
        STREAMED.append([name for name, _ in SIGNALS_SEEN.sent])
        yield b"three"

    return StreamingHttpResponse(chunks(), content_type="text/csv")


def failing_close(request: Any) -> HttpResponse:
    return HttpResponse(b"done", content_type="text/plain")


class Overlap:
    """Threaded requests of the `slow` view: how many ran at once, at most; each waits for `release`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.started = threading.Semaphore(0)
        self.release = threading.Event()


OVERLAP = Overlap()


def slow(request: Any) -> HttpResponse:
    with OVERLAP.lock:
        OVERLAP.running += 1
        OVERLAP.most = max(OVERLAP.most, OVERLAP.running)
    OVERLAP.started.release()
    OVERLAP.release.wait(5)
    with OVERLAP.lock:
        OVERLAP.running -= 1
    return HttpResponse(b"slow", content_type="text/plain")


# This module's views, then the project's (the light reads among them).
urlpatterns = [
    path("streamed", streamed),
    path("failing-close", failing_close),
    path("slow", slow),
    path("", include("attendance_site.urls")),
]
STREAMED: list[list[str]] = []
SIGNALS_SEEN = Signals()


@pytest.mark.urls(__name__)
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
async def test_a_streaming_response_is_closed_once_it_is_sent(request_signals: Signals) -> None:
    SIGNALS_SEEN.sent = request_signals.sent
    STREAMED.clear()
    communicator = get("/streamed")
    await communicator.send_input({"type": "http.request", "body": b""})
    assert (await communicator.receive_output(5))["status"] == 200
    body = b""
    while True:
        message = await communicator.receive_output(5)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(5)
    assert body == b"one,two,three"  # whole: not closed before it was produced
    assert STREAMED == [["started"]]  # request_finished not yet sent when the last chunk was made
    assert [name for name, _ in request_signals.sent] == ["started", "finished"]


@pytest.mark.urls(__name__)
async def test_a_close_that_fails_still_sends_the_answer(request_signals: Signals) -> None:
    """As Django: the answer goes out, then the error is raised (the server logs it)."""

    def broken_receiver(**_: Any) -> None:
        raise RuntimeError("a request_finished receiver failed")

    signals.request_finished.connect(broken_receiver)
    try:
        communicator = get("/failing-close")
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(5)
        body = await communicator.receive_output(5)
        assert start["status"] == 200 and body["body"] == b"done"
        with pytest.raises(RuntimeError, match="receiver failed"):
            await communicator.wait(5)
    finally:
        signals.request_finished.disconnect(broken_receiver)


async def test_a_request_takes_one_hop_to_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the handler: Django's own takes several (request_started, the middleware chain, the view,
    close)."""
    student = await in_thread(make_user, "student")
    hops = count_hops(monkeypatch)
    response = await get("/auth/me", auth(student)).get_response()
    assert response["status"] == 200
    assert hops == [1]


async def test_a_client_that_leaves_while_its_request_is_served(
    request_signals: Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As Django: the handler stops waiting for the response, which is dropped; request_finished is sent once,
    on the request's thread after its call ends."""
    release = threading.Event()
    serving = threading.Event()
    serve = OneHopHandler.serve

    def slow_serve(self: OneHopHandler, *args: Any) -> Any:
        serving.set()
        release.wait(5)
        return serve(self, *args)

    monkeypatch.setattr(OneHopHandler, "serve", slow_serve)
    communicator = get("/auth/me")
    await communicator.send_input({"type": "http.request", "body": b""})
    await in_thread(serving.wait, 5)
    await communicator.send_input({"type": "http.disconnect"})
    await asyncio.sleep(0.1)
    release.set()
    await communicator.wait(5)
    assert communicator.output_queue.empty()  # no answer to a client that left
    assert [name for name, _ in request_signals.sent] == ["started", "finished"]


# --- light operations on the event loop, where the database is embedded ----------------------------------------


def test_the_handler_serves_light_operations_on_the_loop_only_where_the_database_is_embedded() -> None:
    """SQLite: yes; PostgreSQL and MongoDB (CI runs this file on each): a query waits on the network there."""
    assert OneHopHandler().light_on_loop is (connection.vendor == "sqlite")


def test_the_operations_declared_light_are_the_reads_a_student_opening_a_class_makes() -> None:
    klass = "6b1562f77e46f34e8908c045"
    light = [
        ("GET", "/auth/me"),
        ("GET", "/classes"),
        ("GET", f"/class/{klass}"),
        ("GET", f"/class/{klass}/my-attendance"),
        ("GET", f"/class/{klass}/my-history"),
        ("GET", f"/class/{klass}/my-summary"),
    ]
    not_light = [
        ("POST", "/auth/login"),  # password hashing
        ("POST", "/auth/signup"),
        ("POST", "/class"),  # a write
        ("PATCH", f"/class/{klass}"),
        ("GET", "/students"),  # every student: not a few rows
        ("GET", f"/class/{klass}/report"),
        ("GET", f"/class/{klass}/report.xlsx"),
        ("GET", "/attendance/active"),
        ("GET", "/nope"),
        ("GET", "/admin/"),
        ("GET", "/"),
    ]
    handler = OneHopHandler()
    assert [route for route in light if handler.lightness(*route) is True] == light
    assert [route for route in not_light if handler.lightness(*route) is True] == []
    # A report: light while it is quick (below).
    assert handler.lightness("GET", f"/class/{klass}/report") == WhileQuick()
    assert handler.lightness("GET", f"/class/{klass}/report.csv") is False


# --- WhileQuick: a report on the loop while it stays quick ---------------------------------------------------------


async def test_a_report_is_served_on_a_thread_first_then_on_the_loop_while_it_stays_quick(
    request_signals: Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    teacher = await in_thread(make_user, "teacher")
    klass = await in_thread(make_class, teacher, [await in_thread(make_user, "student")])
    handler = OneHopHandler(light_on_loop=True)
    report = f"/class/{klass.id}/report"
    loop_thread = threading.current_thread().name

    async def served_on_loop(path: str) -> bool:
        before = len(request_signals.sent)
        response = await send_to(handler, path, auth(teacher)).get_response()
        assert response["status"] == 200
        assert b'"sessions":0' in response["body"]
        return request_signals.sent[before][1] == loop_thread

    took = [0.001]
    monkeypatch.setattr(http_handler, "time", SetClock(took))
    assert await served_on_loop(report) is False  # never served: its cost is unknown
    assert await served_on_loop(report) is True
    assert await served_on_loop(report) is True
    assert await served_on_loop(report + "?from=2026-01-01T00:00:00Z") is False  # another request: its own cost
    padded = report + "?from=2026-01-01T00:00:00Z&" + "x" * http_handler.QUICK_REQUEST_LENGTH
    assert [await served_on_loop(padded) for _ in range(2)] == [False, False]  # too long to keep: always a thread
    # It grows past WhileQuick's limit (each call now takes a minute of CPU): served on the loop once more, as
    # it was quick last time, and on a thread from then on.
    took[0] = 60.0
    assert await served_on_loop(report) is True
    assert await served_on_loop(report) is False
    assert await served_on_loop(report) is False
    took[0] = 0.001  # quick again: back on the loop after the next
    assert await served_on_loop(report) is False
    assert await served_on_loop(report) is True


class SetClock:
    """The handler's clocks, as its `time` module: each served call takes `took[0]` seconds by both (each is read
    before and after it) — what the test says, not what this machine's load makes it."""

    def __init__(self, took: list[float]) -> None:
        self.took = took
        self.readings = itertools.count()

    def thread_time(self) -> float:
        return next(self.readings) * self.took[0]

    perf_counter = thread_time


async def test_a_refusal_does_not_make_a_slow_report_quick(
    request_signals: Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone may ask for a class's report and be refused at once (no token, not its teacher): only a full answer's
    cost is kept, or a refusal between the teacher's reports would send the next one, as slow as ever, to the loop."""
    teacher, other = await in_thread(make_user, "teacher"), await in_thread(make_user, "teacher")
    klass = await in_thread(make_class, teacher)
    handler = OneHopHandler(light_on_loop=True)
    report = f"/class/{klass.id}/report"
    took = [0.0]
    monkeypatch.setattr(http_handler, "time", SetClock(took))
    loop_thread = threading.current_thread().name
    # The report takes a minute; each refusal a millisecond.
    for headers, status, seconds in [
        (auth(teacher), 200, 60.0), ({}, 401, 0.001), (auth(other), 403, 0.001), (auth(teacher), 200, 60.0)
    ]:
        took[0] = seconds
        before = len(request_signals.sent)
        assert (await send_to(handler, report, headers).get_response())["status"] == status
        assert request_signals.sent[before][1] != loop_thread  # each on a thread: the last full answer was slow


async def test_a_report_keeps_its_thread_where_the_database_is_not_embedded(request_signals: Signals) -> None:
    teacher = await in_thread(make_user, "teacher")
    klass = await in_thread(make_class, teacher)
    handler = OneHopHandler(light_on_loop=False)
    for _ in range(3):
        assert (await send_to(handler, f"/class/{klass.id}/report", auth(teacher)).get_response())["status"] == 200
    assert threading.current_thread().name not in {thread for _, thread in request_signals.sent}
    assert len(handler.quick._cost) == 0  # nor is its cost kept: it would never be asked


def test_whether_a_request_is_served_on_the_loop_is_decided_once_per_request() -> None:
    """KeptThreads and the handler each ask; a cost recorded in between (another request's) changes the answer for
    the next request only."""
    handler = OneHopHandler(light_on_loop=True)
    path = "/class/6b1562f77e46f34e8908c045/report"

    def scope() -> dict[str, Any]:
        return {"type": "http", "method": "GET", "path": path, "query_string": b""}

    first = scope()
    assert handler.serves_on_loop(first) is False
    handler.quick.took((path, b""), 0.001)
    assert handler.serves_on_loop(first) is False
    assert handler.serves_on_loop(scope()) is True


def test_quick_requests_forget_the_least_recently_served_beyond_what_they_keep() -> None:
    quick = http_handler.QuickRequests(kept=2)
    quick.took(("/a", b""), 0.001)
    quick.took(("/b", b""), 0.001)
    quick.took(("/a", b""), 0.002)  # served again: the most recent
    quick.took(("/c", b""), 0.001)
    assert [quick.is_quick((path, b""), 0.01) for path in ("/a", "/b", "/c")] == [True, False, True]
    assert quick.is_quick(("/a", b""), 0.001) is False  # its last cost, not its first


async def test_a_light_operation_is_served_on_the_loop_without_a_thread(
    request_signals: Signals, monkeypatch: pytest.MonkeyPatch
) -> None:
    student = await in_thread(make_user, "student", name="Ann")
    hops, tasks = count_hops(monkeypatch), count_tasks(monkeypatch)
    response = await get("/auth/me", auth(student), light_on_loop=True).get_response()
    assert response["status"] == 200
    assert b'"name":"Ann"' in response["body"]
    assert hops == [0]
    assert tasks == [0]  # nor a task listening for a disconnect beside it: nothing runs before it is served
    loop_thread = threading.current_thread().name
    assert request_signals.sent == [("started", loop_thread), ("finished", loop_thread)]
    asyncio.get_running_loop()  # the loop is there again for what follows


async def test_on_the_loop_a_call_that_raises_still_gets_request_finished_once(request_signals: Signals) -> None:
    student = await in_thread(make_user, "student")

    def failing(**_: Any) -> None:
        raise RuntimeError("a request_started receiver failed")

    signals.request_started.connect(failing)
    try:
        with pytest.raises(RuntimeError, match="receiver failed"):
            await get("/auth/me", auth(student), light_on_loop=True).get_response()
    finally:
        signals.request_started.disconnect(failing)
    loop_thread = threading.current_thread().name
    assert request_signals.sent == [("started", loop_thread), ("finished", loop_thread)]


async def test_on_the_loop_a_deactivated_user_is_refused_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    student = await in_thread(make_user, "student")
    assert (await get("/auth/me", auth(student), light_on_loop=True).get_response())["status"] == 200
    await in_thread(lambda: type(student).objects.filter(pk=student.pk).update(is_active=False))
    response = await get("/auth/me", auth(student), light_on_loop=True).get_response()
    assert response["status"] == 401
    assert response["body"].startswith(b'{"success":false')


async def test_light_requests_run_in_one_kept_context_as_in_a_wsgi_thread() -> None:
    """What Django keeps in asgiref Locals that are not thread-critical (its cache handles) lives in context
    variables: each light request's synchronous part runs in the loop's one kept context, so they are made once
    and found by the next request (and by request_finished's close), not made again per request."""
    student = await in_thread(make_user, "student")
    handler = OneHopHandler(light_on_loop=True)
    seen: list[tuple[Any, bool]] = []

    def note(**_: Any) -> None:  # a request_started receiver: in the request's synchronous part
        made = hasattr(caches._connections, "default")  # (before caches["default"], which would make it)
        seen.append((caches["default"], made))

    signals.request_started.connect(note)
    try:
        for _ in range(3):
            assert (await send_to(handler, "/auth/me", auth(student)).get_response())["status"] == 200
    finally:
        signals.request_started.disconnect(note)
    assert [made for _, made in seen] == [True, True, True]  # made with the context, before the first request
    assert seen[0][0] is seen[1][0] is seen[2][0]
    assert seen[0][0] is not caches["default"]  # the test's own context (the request task's) was not touched


async def test_an_api_path_is_resolved_once_not_on_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    student = await in_thread(make_user, "student")
    resolved: list[str] = []
    resolve = URLResolver.resolve

    def counted(self: URLResolver, path: str) -> Any:
        if self is get_resolver():  # the root's (it resolves through the included ones)
            resolved.append(path)
        return resolve(self, path)

    monkeypatch.setattr(URLResolver, "resolve", counted)
    for light_on_loop in (True, False):
        handler = OneHopHandler(light_on_loop=light_on_loop)
        resolved.clear()
        for _ in range(3):
            assert (await send_to(handler, "/auth/me", auth(student)).get_response())["status"] == 200
        assert resolved == ["/auth/me"]


def test_the_kept_match_is_the_one_django_makes_and_is_set_on_the_request() -> None:
    handler = OneHopHandler()
    request = RequestFactory().get("/class/abc/report")
    match = handler.api.resolve_request(request)
    django_match = get_resolver().resolve("/class/abc/report")
    assert request.resolver_match is match
    assert (match.func, match.args, match.kwargs, match.url_name, match.route) == (
        django_match.func, django_match.args, django_match.kwargs, django_match.url_name, django_match.route)
    assert handler.api.resolve_request(RequestFactory().get("/class/abc/report")) is match


def test_a_request_with_its_own_urlconf_or_view_middleware_is_resolved_by_django(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = OneHopHandler()
    kept = handler.api.resolve_request(RequestFactory().get("/auth/me"))
    own = RequestFactory().get("/auth/me")
    own.urlconf = "attendance_site.urls"
    try:
        assert handler.api.resolve_request(own) is not kept
    finally:
        set_urlconf(None)  # (Django's resolve_request sets the request's URLconf for the thread)
    assert own.resolver_match.func is kept.func
    # A view middleware is given the match's arguments, and could change them: each request gets its own.
    monkeypatch.setattr(handler.api, "_view_middleware", [lambda *args: None])
    assert handler.api.resolve_request(RequestFactory().get("/auth/me")) is not kept


def test_a_kept_match_is_kept_by_its_urlconf(settings: Any) -> None:
    """A handler that outlives a change of ROOT_URLCONF (a test's own) resolves with the new one."""
    handler = OneHopHandler()
    assert handler.api_match("/auth/me") is not None
    settings.ROOT_URLCONF = "apidocs.urls"  # no API route in it
    assert handler.api_match("/auth/me") is None
    assert handler.operations("/auth/me") is None


def checked_host_request(host: str) -> CheckedHostRequest:
    scope = {"type": "http", "method": "GET", "path": "/auth/me", "query_string": b"", "root_path": "",
             "headers": [(b"host", host.encode())]}
    return CheckedHostRequest(scope, io.BytesIO())


def test_a_request_s_host_is_checked_once_a_changed_one_again_a_refused_one_each_time(
    monkeypatch: pytest.MonkeyPatch, settings: Any,
) -> None:
    settings.ALLOWED_HOSTS = ["good.example"]
    checked: list[str] = []
    validate = http_request.validate_host
    monkeypatch.setattr(http_request, "validate_host",
                        lambda domain, allowed: checked.append(domain) or validate(domain, allowed))
    assert OneHopHandler.request_class is CheckedHostRequest
    request = checked_host_request("good.example")
    assert request.get_host() == request.get_host() == "good.example"
    assert checked == ["good.example"]  # BadHostMiddleware's and CommonMiddleware's asks: one check
    request.META["HTTP_HOST"] = "evil.example"  # (a middleware that rewrites it)
    with pytest.raises(DisallowedHost):
        request.get_host()
    refused = checked_host_request("evil.example")
    for _ in range(2):
        with pytest.raises(DisallowedHost):
            refused.get_host()
    assert checked == ["good.example", "evil.example", "evil.example", "evil.example"]


async def test_each_light_request_sees_its_own_script_prefix() -> None:
    """The script prefix (the ASGI root_path, behind a proxy that mounts the site under a path) is set in the
    context the request is served in: the kept one, for a light request."""
    student = await in_thread(make_user, "student")
    handler = OneHopHandler(light_on_loop=True)
    prefixes: list[str] = []

    def note(**_: Any) -> None:
        prefixes.append(get_script_prefix())

    signals.request_started.connect(note)
    try:
        for root in ("/one", "/two"):
            communicator = send_to(handler, "/auth/me", auth(student))
            communicator.scope["root_path"] = root
            assert (await communicator.get_response())["status"] == 200
    finally:
        signals.request_started.disconnect(note)
    assert prefixes == ["/one/", "/two/"]


async def test_other_operations_keep_their_thread(monkeypatch: pytest.MonkeyPatch, request_signals: Signals) -> None:
    teacher = await in_thread(make_user, "teacher")
    hops, tasks = count_hops(monkeypatch), count_tasks(monkeypatch)
    for route in ("/students", "/nope"):
        response = await get(route, auth(teacher), light_on_loop=True).get_response()
        assert response["status"] in (200, 404)
    assert hops == [2]
    assert tasks == [4]  # each served beside the task that notices its client leave, as Django serves it
    assert threading.current_thread().name not in {thread for _, thread in request_signals.sent}


def test_outside_the_loop_hidden_django_still_refuses_database_calls_on_the_loop() -> None:
    """The check stays on for everything else: only the one call of a light request is let through."""

    async def query() -> None:
        with http_handler.event_loop_hidden():
            assert list(User.objects.filter(pk="0" * 24)) == []
        User.objects.filter(pk="0" * 24).exists()

    with pytest.raises(SynchronousOnlyOperation):
        asyncio.run(query())


# --- HTTP_THREADS -------------------------------------------------------------------------------------------------


@pytest.fixture
def overlap() -> Iterator[Overlap]:
    global OVERLAP
    OVERLAP = Overlap()
    yield OVERLAP
    OVERLAP.release.set()


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("threads", [1, 3])
async def test_at_most_http_threads_requests_are_on_threads_at_once(
    overlap: Overlap, settings: Any, threads: int
) -> None:
    settings.HTTP_THREADS = threads
    handler = OneHopHandler(light_on_loop=False)
    requests = [HttpCommunicator(handler, "GET", "/slow", headers=[(b"host", b"localhost")]) for _ in range(4)]
    for request in requests:
        await request.send_input({"type": "http.request", "body": b""})
    for _ in range(threads):  # as many as may run have started...
        assert await in_thread(overlap.started.acquire, True, 5)
    await asyncio.sleep(0.2)
    assert overlap.running == threads  # ...and no more, until one ends
    overlap.release.set()
    for request in requests:
        assert (await request.receive_output(5))["status"] == 200
        await request.wait(5)
    assert overlap.most == threads


@pytest.mark.urls(__name__)
async def test_light_reads_do_not_wait_for_the_threads(overlap: Overlap, settings: Any) -> None:
    """The one thread is busy; a light read, on the loop, is answered meanwhile."""
    settings.HTTP_THREADS = 1
    student = await in_thread(make_user, "student", name="Ann")
    handler = OneHopHandler(light_on_loop=True)
    busy = HttpCommunicator(handler, "GET", "/slow", headers=[(b"host", b"localhost")])
    await busy.send_input({"type": "http.request", "body": b""})
    assert await in_thread(overlap.started.acquire, True, 5)
    headers = [(b"host", b"localhost"), (b"authorization", auth(student)["Authorization"].encode())]
    light = await HttpCommunicator(handler, "GET", "/auth/me", headers=headers).get_response(5)
    assert light["status"] == 200 and b'"name":"Ann"' in light["body"]
    assert overlap.running == 1  # answered while the thread was still busy
    overlap.release.set()
    assert (await busy.receive_output(5))["status"] == 200
    await busy.wait(5)


@pytest.mark.urls(__name__)
async def test_a_thread_whose_client_left_still_counts_until_its_call_ends(overlap: Overlap, settings: Any) -> None:
    """The client goes; its request's thread runs on: the next request waits for it all the same."""
    settings.HTTP_THREADS = 1
    handler = OneHopHandler(light_on_loop=False)
    first, second = (HttpCommunicator(handler, "GET", "/slow", headers=[(b"host", b"localhost")]) for _ in range(2))
    await first.send_input({"type": "http.request", "body": b""})
    assert await in_thread(overlap.started.acquire, True, 5)
    await first.send_input({"type": "http.disconnect"})
    await asyncio.sleep(0.1)
    await second.send_input({"type": "http.request", "body": b""})
    assert not await in_thread(overlap.started.acquire, True, 0.5)  # not started beside the first
    overlap.release.set()
    assert (await second.receive_output(5))["status"] == 200
    await first.wait(5)
    await second.wait(5)
    assert overlap.most == 1
