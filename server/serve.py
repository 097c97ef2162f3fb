"""Run the API and the WebSocket with Daphne, configured from the environment.

`make run` and the over-the-wire tests both start the server through this module, so they serve
with the same options (port, WebSocket frame limits) and the same extensions of Daphne (server.gate).
Once the server accepts connections it prints `Listening on http://HOST:PORT` on stdout.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from typing import Any

from daphne.endpoints import build_endpoint_description_strings
from django.conf import settings

# Daphne has no "off" for its connect timeout (0 would refuse every socket still connecting): a year is off.
NO_CONNECT_TIMEOUT = 365 * 24 * 3600


def daphne_argv(
    port: int, host: str = "127.0.0.1", proxy_headers: bool = False, access_log: bool = True,
    backlog: int | None = None,
) -> list[str]:
    limit = str(settings.WS_MAX_MESSAGE_BYTES)
    [endpoint] = build_endpoint_description_strings(host=host, port=port)  # Daphne's -b/-p, as an endpoint
    return [
        "daphne",
        # Verbosity 1 (Daphne's default) writes its access log to standard output; 0 writes none.
        "-v", "1" if access_log else "0",
        # Twisted listens with a backlog of 50: a class connecting at once overflows it, and each dropped
        # connection attempt waits a second for the client to try again (docs/benchmark.md).
        "-e", f"{endpoint}:backlog={settings.LISTEN_BACKLOG if backlog is None else backlog}",
        "--websocket-max-message-size", limit,
        "--websocket-max-frame-size", limit,
        # A socket's handshake must complete within the request deadline (Daphne's default: 5 s).
        "--websocket_connect_timeout", str(settings.REQUEST_DEADLINE_SECONDS or NO_CONNECT_TIMEOUT),
        # Behind a reverse proxy: take the client's address from X-Forwarded-For.
        *(["--proxy-headers"] if proxy_headers else []),
        "attendance_site.asgi:application",
    ]


def log_gc_pauses(path: str) -> None:
    """Diagnostics (GC_DIAG=<file>): append one line per generation-2 collection — its pause and what it
    collected — to `path`; for the benchmark's "GC cliff" analysis, off by default."""
    started = [0.0]
    out = open(path, "a", buffering=1)  # noqa: SIM115 (open for the process's life)

    def callback(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pause_ms = (time.perf_counter() - started[0]) * 1000
            out.write(f"{time.time():.3f} gen2 {pause_ms:.1f} ms collected={info['collected']}"
                      f" tracked={len(gc.get_objects())} frozen={gc.get_freeze_count()}\n")

    gc.callbacks.append(callback)


# The collector's youngest generation: collected every this many allocations (Python's default: 700). Under 32
# connections of GET /auth/me, at 700 the objects of the requests in flight were caught alive by young passes,
# promoted, and made a full pass of the process's ~40,000 long-lived objects about once a second (16-60 ms each,
# the loop stopped: p99 75-83 ms); at 10,000 they have died first — one full pass in 8 s, p99 32-36 ms and
# 1.2-1.3x the requests per second (docs/benchmark.md, "HTTP: the last of Django's per-request costs"). Young
# passes stay cheap (at most this many objects) and still free each request's cycles.
YOUNG_GENERATION_THRESHOLD = 10_000


def tune_collector() -> None:
    """The production server's garbage collection: start-up objects (modules, URL patterns, models) never die,
    so they are kept out of every pass (frozen); and the youngest generation is collected less often."""
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)


def announce_listening(server: Any) -> None:
    """Print where the Daphne `server` accepts connections (stdout, flushed): called once, when the reactor
    starts running, after the server has opened its listening sockets."""
    for host, port in server.listening_addresses:
        shown = f"[{host}]" if ":" in host else host  # an IPv6 address, as URLs write it
        print(f"Listening on http://{shown}:{port}", flush=True)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attendance_site.settings")
    import django

    django.setup()  # fails fast on bad settings (e.g. the default secret with DEBUG off)
    from server import gate

    gate.install()  # before Daphne builds its server, factories and protocols (one warning if not all fit)
    # Database work runs on a worker thread while the event loop thread serves sockets. With the default
    # 5 ms GIL switch interval, a busy loop makes every thread hop wait up to 5 ms for the GIL (the
    # "convoy effect"); 1 ms keeps socket connects and DB-backed events quick under load.
    sys.setswitchinterval(0.001)
    tune_collector()
    from live import upkeep

    upkeep.freeze_after_connects()  # and the sockets' objects, once a burst of connects has settled
    if os.environ.get("GC_DIAG"):
        log_gc_pauses(os.environ["GC_DIAG"])
    from daphne.cli import CommandLineInterface
    from twisted.internet import reactor  # Daphne's asyncio reactor (daphne.server installs it on import)

    host = os.environ.get("HOST", "127.0.0.1")
    argv = daphne_argv(settings.PORT, host, settings.PROXY_HEADERS, settings.ACCESS_LOG)
    cli = CommandLineInterface()
    # Daphne listens before it runs the reactor, and never runs it if listening failed.
    reactor.callWhenRunning(lambda: announce_listening(cli.server))
    cli.run(argv[1:])


if __name__ == "__main__":
    main()
