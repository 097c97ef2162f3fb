"""The Daphne command line that `make run` and the wire tests share, and the production server's collector."""

import gc
import os
import select
import signal
import socket
import time

import pytest

from server import serve
from server.serve import daphne_argv
from tests.support import own_wire_server


def test_daphne_serves_the_asgi_app_on_the_port_with_the_64_kib_frame_limit(settings):
    argv = daphne_argv(4000, "0.0.0.0")
    assert argv[0] == "daphne" and argv[-1] == "attendance_site.asgi:application"
    # Daphne's -b/-p as an endpoint, with a listen backlog a class connecting at once does not overflow.
    assert argv[argv.index("-e") + 1] == f"tcp:port=4000:interface=0.0.0.0:backlog={settings.LISTEN_BACKLOG}"
    assert argv[argv.index("--websocket-max-message-size") + 1] == str(64 * 1024)
    assert argv[argv.index("--websocket-max-frame-size") + 1] == str(64 * 1024)
    # docs/production.md limits: a handshake not completed within 10 s is closed (the request itself: daphne_limits).
    assert argv[argv.index("--websocket_connect_timeout") + 1] == "10"
    assert "--proxy-headers" not in argv
    assert argv[argv.index("-v") + 1] == "1"  # Daphne's access log, on standard output


def test_proxy_headers_only_when_asked():
    assert "--proxy-headers" in daphne_argv(3000, proxy_headers=True)


def test_the_access_log_only_when_asked():
    assert daphne_argv(3000, access_log=False)[daphne_argv(3000).index("-v") + 1] == "0"


def test_an_ipv6_address_and_another_backlog():
    argv = daphne_argv(3000, "::1", backlog=64)
    assert argv[argv.index("-e") + 1] == r"tcp:port=3000:interface=\:\:1:backlog=64"


def connected_within(sockets: list[socket.socket], seconds: float) -> list[socket.socket]:
    """The sockets whose connection completed within `seconds` (each polled until then)."""
    poller, pending, done = select.poll(), {sock.fileno(): sock for sock in sockets}, []
    for fd in pending:
        poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + seconds
    while pending and (left := deadline - time.monotonic()) > 0:
        for fd, _ in poller.poll(left * 1000):
            sock = pending.pop(fd)
            poller.unregister(fd)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                done.append(sock)
    return done


@pytest.mark.wire
@pytest.mark.skipif(int(open("/proc/sys/net/core/somaxconn").read()) < 256,  # noqa: SIM115
                    reason="the kernel caps listen backlogs below what this test needs (net.core.somaxconn)")
@pytest.mark.parametrize("backlog", [None, 50])
def test_a_class_connecting_at_once_is_queued_by_the_kernel_until_the_server_accepts(tmp_path, backlog):
    """200 connections opened while the server cannot accept (stopped): all are queued and completed at once by
    the kernel, then served. With Twisted's backlog of 50 the rest wait a second for the client to try again."""
    env = {} if backlog is None else {"LISTEN_BACKLOG": str(backlog)}
    with own_wire_server(tmp_path, env) as server:
        sockets = [socket.socket() for _ in range(200)]
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            for sock in sockets:
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", server.port))
            # Well within the client's first retry (1 s): those the kernel queued are connected, the others not.
            connected = connected_within(sockets, 0.5)
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        try:
            if backlog is not None:
                assert len(connected) < 60  # the test can tell (Linux queues backlog + 1)
                return
            assert len(connected) == 200
            for sock in sockets:
                sock.setblocking(True)
                sock.settimeout(10)
                sock.sendall(b"GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answers = [sock.recv(64) for sock in sockets]
            assert all(answer.startswith(b"HTTP/1.1 404") for answer in answers), set(answers)
        finally:
            for sock in sockets:
                sock.close()


def test_the_production_collector_freezes_start_up_and_collects_the_young_less_often():
    before = gc.get_threshold()
    try:
        gc.unfreeze()
        serve.tune_collector()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (serve.YOUNG_GENERATION_THRESHOLD, *before[1:])
        assert serve.YOUNG_GENERATION_THRESHOLD > before[0]
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
