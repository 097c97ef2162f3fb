"""KeptThreads: requests' thread-sensitive work on kept threads, one request per thread at a time."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from asgiref.sync import SyncToAsync, ThreadSensitiveContext, sync_to_async

from server.http_threads import KeptThreads, RequestThread


class Recorder:
    """An ASGI app that does what Django's handler does: its own ThreadSensitiveContext, then sync work."""

    def __init__(self, hold: threading.Event | None = None) -> None:
        self.threads: list[int] = []
        self.hold = hold

    def work(self) -> None:
        self.threads.append(threading.get_ident())
        if self.hold is not None:
            self.hold.wait(5)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async with ThreadSensitiveContext():
            await sync_to_async(self.work)()
            await sync_to_async(self.work)()


async def call(app: Any) -> None:
    await app({"type": "http"}, None, None)


async def settle(app: KeptThreads, idle: int) -> None:
    for _ in range(100):
        if len(app.idle) == idle:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{len(app.idle)} idle executors, expected {idle}")


async def test_a_request_keeps_one_thread_and_the_next_reuses_it() -> None:
    recorder = Recorder()
    app = KeptThreads(recorder)
    await call(app)
    await settle(app, 1)
    await call(app)
    # Without KeptThreads each request's context would start (and join) a thread of its own.
    assert len(recorder.threads) == 4 and len(set(recorder.threads)) == 1
    assert recorder.threads[0] != threading.get_ident()


async def test_concurrent_requests_have_threads_of_their_own() -> None:
    hold = threading.Event()
    recorder = Recorder(hold)
    app = KeptThreads(recorder)
    first = asyncio.ensure_future(call(app))
    second = asyncio.ensure_future(call(app))
    for _ in range(100):
        if len(recorder.threads) == 2:
            break
        await asyncio.sleep(0.01)
    # Both are inside their sync work at once: neither waits for the other's thread.
    assert len(set(recorder.threads)) == 2
    hold.set()
    await asyncio.gather(first, second)
    await settle(app, 2)


async def test_idle_threads_beyond_the_limit_are_ended() -> None:
    hold = threading.Event()
    recorder = Recorder(hold)
    app = KeptThreads(recorder, keep_idle=1)
    calls = [asyncio.ensure_future(call(app)) for _ in range(3)]
    for _ in range(100):
        if len(recorder.threads) == 3:
            break
        await asyncio.sleep(0.01)
    hold.set()
    await asyncio.gather(*calls)
    await settle(app, 1)


def test_a_thread_is_handed_on_only_once_its_work_has_run() -> None:
    # A request whose client left is cancelled while its view still runs on the thread: the next request
    # must not queue behind that view.
    thread = RequestThread()
    release, handed_on = threading.Event(), threading.Event()
    thread.submit(release.wait, 5)
    thread.when_idle(handed_on.set)
    assert not handed_on.wait(0.05)
    release.set()
    assert handed_on.wait(5)
    thread.when_idle(lambda: None)  # nothing pending: called at once
    thread.shutdown()


class OnLoop:
    """An app that serves some requests on the loop (as OneHopHandler serves light ones): it says which."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def serves_on_loop(self, scope: Any) -> bool:
        return bool(scope.get("light"))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls.append((scope["path"], SyncToAsync.thread_sensitive_context.get(None)))


async def test_a_request_served_on_the_loop_is_lent_no_thread() -> None:
    app = OnLoop()
    kept = KeptThreads(app)
    await kept({"type": "http", "path": "/light", "light": True}, None, None)
    assert app.calls == [("/light", None)]  # no context, so asgiref has no thread for it either
    await settle(kept, 0)  # none made, none kept
    await kept({"type": "http", "path": "/heavy"}, None, None)
    assert app.calls[1][0] == "/heavy" and app.calls[1][1] is not None
    await settle(kept, 1)
