"""server.gate: the extensions of Daphne/Autobahn/Twisted install only on what they were written for, and the
server then serves the contract on Daphne's plain paths too (close codes, the request deadline) and prints
where it listens.

The units restore the packages after each test (gate.reset); the wire tests start servers of their own.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import pprint
import re
import secrets
import time
import weakref
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, ClassVar

import httpx
import pytest
from autobahn import util as autobahn_util
from autobahn.twisted import websocket as autobahn_twisted_websocket
from autobahn.websocket import protocol as autobahn_protocol
from daphne import cli as daphne_cli
from daphne import http_protocol, utils, ws_protocol
from daphne import server as daphne_server
from daphne.ws_protocol import WebSocketFactory
from twisted.internet import abstract, task
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.deprecate import _ModuleProxy
from twisted.python.failure import Failure
from twisted.web import http

from common.messages import WS_UNAUTHORIZED
from server import daphne_limits, fanout, gate
from server.daphne_ext import AttendanceServer, AttendanceWebSocketFactory, FastWebSocketFactory, PlainHttpModule
from server.daphne_limits import DeadlineHTTPChannel, DeadlineHTTPFactory, FastHTTPChannel
from server.fanout import NativeFanOut
from server.write_now import WriteNow
from tests.support import (
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_POLICY_VIOLATION,
    error,
    expect_close,
    mark,
    marked,
    new_classroom,
    own_wire_server,
    recv,
    start,
)

# The native fan-out is there only where server.build_native found a C compiler (README: optional).
ALL = [
    "request limits", "close codes", "fast sockets", "write-now",
    *(["native fan-out"] if fanout._fanout is not None else []), "lazy debug logs", "plain http module",
    "fast http channels",
]
WARNING = "Server extensions not installed"


@pytest.fixture(autouse=True)
def clean_gate() -> Iterator[None]:
    """Each test starts with nothing installed, and leaves nothing installed."""
    gate.reset()
    yield
    gate.reset()


def gate_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.name == "server.gate" and record.levelno == logging.WARNING]


def assert_plain_websockets() -> None:
    """Daphne's own server and WebSocket factory, Twisted's writes (what no extension touched)."""
    assert daphne_cli.CommandLineInterface.server_class is daphne_server.Server
    assert daphne_server.WebSocketFactory is WebSocketFactory
    assert WriteNow.on is False
    assert NativeFanOut.on is False


def assert_nothing_patched() -> None:
    assert_plain_websockets()
    assert daphne_server.HTTPFactory is http_protocol.HTTPFactory
    assert http_protocol.parse_x_forwarded_for is utils.parse_x_forwarded_for
    assert ws_protocol.parse_x_forwarded_for is utils.parse_x_forwarded_for
    assert autobahn_protocol.hltype is autobahn_twisted_websocket.hltype is autobahn_util.hltype
    assert autobahn_protocol.hlval is autobahn_twisted_websocket.hlval is autobahn_util.hlval
    assert autobahn_protocol.pformat is pprint.pformat
    assert isinstance(http_protocol.http, _ModuleProxy)
    assert DeadlineHTTPFactory.protocol is DeadlineHTTPChannel
    assert len(gate._patches) == 0


def real_version(package: str) -> str:
    return {"daphne": "4.2.3", "autobahn": "26.11.1", "twisted": "26.10.0"}.get(package, "1.0")


# --- the gate, as units -------------------------------------------------------------------------------------------
def test_on_the_versions_written_for_every_extension_installs_without_a_warning(caplog):
    assert gate.install(fast_path=True) == ALL
    assert daphne_cli.CommandLineInterface.server_class is AttendanceServer
    assert daphne_server.WebSocketFactory is FastWebSocketFactory
    assert daphne_server.HTTPFactory is DeadlineHTTPFactory
    assert DeadlineHTTPFactory.protocol is FastHTTPChannel
    last_hop = daphne_limits.parse_x_forwarded_for
    assert http_protocol.parse_x_forwarded_for is ws_protocol.parse_x_forwarded_for is last_hop
    assert WriteNow.on is True
    assert NativeFanOut.on is (fanout._fanout is not None)
    assert gate_warnings(caplog) == ([] if fanout._fanout is not None else [
        f"{WARNING}, running on Daphne's plain paths for them — native fan-out: missing server._fanout "
        "(not built: python -m server.build_native)"])


def test_installing_twice_changes_nothing_and_warns_once(caplog):
    assert gate.install(fast_path=False) == ["request limits", "close codes"]
    patched = len(gate._patches)
    assert gate.install(fast_path=True) == ["request limits", "close codes"]  # each extension is considered once
    assert len(gate._patches) == patched
    assert len(gate_warnings(caplog)) == 1


def test_reset_restores_the_packages():
    gate.install(fast_path=True)
    gate.reset()
    assert_nothing_patched()


@pytest.mark.parametrize(
    ("package", "installed", "still_installed"),
    [
        ("daphne", "4.3.0", ["lazy debug logs"]),  # every other extension is Daphne's
        # A patch release: the public parts still fit, what reads internals does not.
        ("autobahn", "26.11.2", ["request limits", "close codes", "plain http module", "fast http channels"]),
        ("twisted", "26.10.1", ["request limits", "close codes", "fast sockets", "lazy debug logs"]),
        ("twisted", "27.1.0", ["close codes", "fast sockets", "lazy debug logs"]),
    ],
)
def test_a_version_not_written_for_leaves_its_extensions_out_with_one_warning(
    monkeypatch, caplog, package, installed, still_installed
):
    monkeypatch.setattr(gate.metadata, "version", lambda name: installed if name == package else real_version(name))
    assert gate.install(fast_path=True) == still_installed
    assert WriteNow.on is False
    if "fast sockets" not in still_installed:
        assert daphne_cli.CommandLineInterface.server_class is daphne_server.Server
    if not {"request limits", "close codes"} & set(still_installed):
        assert_plain_websockets()
        assert daphne_server.HTTPFactory is http_protocol.HTTPFactory
    [warning] = gate_warnings(caplog)
    assert f"{package} {installed} (written for " in warning
    for name in set(ALL) - set(still_installed):
        assert f"{name}: " in warning


def test_a_missing_private_attribute_leaves_its_extension_out_with_one_warning(monkeypatch, caplog):
    monkeypatch.delattr(abstract.FileDescriptor, "_writeDisconnected")  # write-now reads it
    assert gate.install(fast_path=True) == [
        "request limits", "close codes", "fast sockets", "lazy debug logs", "plain http module", "fast http channels"]
    assert WriteNow.on is False  # the fast protocol sends through Twisted
    [warning] = gate_warnings(caplog)
    assert "write-now: missing twisted.internet.tcp.Connection()._writeDisconnected" in warning


def test_a_native_fan_out_not_built_leaves_it_out_with_one_warning(monkeypatch, caplog):
    monkeypatch.setattr(fanout, "_fanout", None)  # as when server.build_native found no compiler
    assert gate.install(fast_path=True) == [name for name in ALL if name != "native fan-out"]
    assert WriteNow.on is True  # broadcasts are written from Python, each one now
    assert NativeFanOut.on is False
    [warning] = gate_warnings(caplog)
    assert "native fan-out: missing server._fanout (not built: python -m server.build_native)" in warning


def test_a_missing_attribute_of_the_contract_protocol_leaves_the_sockets_plain(monkeypatch, caplog):
    monkeypatch.delattr(autobahn_protocol.WebSocketProtocol, "sendCloseFrame")
    assert gate.install(fast_path=True) == [
        "request limits", "lazy debug logs", "plain http module", "fast http channels"]
    assert_plain_websockets()
    [warning] = gate_warnings(caplog)
    assert "close codes: missing" in warning and "sendCloseFrame" in warning
    assert "fast sockets: needs close codes" in warning and "write-now: needs fast sockets" in warning


def test_live_fast_path_0_keeps_the_contract_and_leaves_the_fast_path_out(settings, caplog):
    settings.LIVE_FAST_PATH = False
    assert gate.install() == ["request limits", "close codes"]
    assert daphne_cli.CommandLineInterface.server_class is daphne_server.Server
    assert daphne_server.WebSocketFactory is AttendanceWebSocketFactory  # the close codes' protocol, no more
    assert daphne_server.HTTPFactory is DeadlineHTTPFactory
    assert DeadlineHTTPFactory.protocol is DeadlineHTTPChannel  # the deadline, Twisted's own idle timeout
    assert WriteNow.on is False
    assert gate_warnings(caplog) == [f"{WARNING}, running on Daphne's plain paths for them — "
                                     "fast sockets: LIVE_FAST_PATH=0; write-now: LIVE_FAST_PATH=0; "
                                     "native fan-out: LIVE_FAST_PATH=0; lazy debug logs: LIVE_FAST_PATH=0; "
                                     "plain http module: LIVE_FAST_PATH=0; fast http channels: LIVE_FAST_PATH=0"]


class HalfWay(gate.Extension):
    name = "half way"
    stand_in: ClassVar[Any] = object()

    @classmethod
    def setup_once(cls, patches: gate.Patches) -> None:
        patches.set(daphne_server, "HTTPFactory", cls.stand_in)
        raise gate.DidNotEnable("the second step did not fit")


def test_an_extension_that_fails_half_way_is_rolled_back(caplog):
    assert gate.install([HalfWay, "server.no_such_module.Extension"], fast_path=True) == []
    assert_nothing_patched()
    [warning] = gate_warnings(caplog)
    assert "half way: the second step did not fit" in warning and "server.no_such_module.Extension" in warning


def test_autobahn_s_debug_log_arguments_are_made_only_when_formatted_and_read_the_same(monkeypatch):
    assert "lazy debug logs" in gate.install(fast_path=True)
    made: list[Any] = []
    monkeypatch.setattr(autobahn_util, "hl", lambda text, **style: made.append(text) or f"<{text}>")
    for module in (autobahn_protocol, autobahn_twisted_websocket):
        func, value = module.hltype(test_reset_restores_the_packages), module.hlval(42)
        assert made == []  # nothing styled until the message is formatted
        assert f"{func} {value}" == (
            f"{autobahn_util.hltype(test_reset_restores_the_packages)} {autobahn_util.hlval(42)}")
        assert str(value) == autobahn_util.hlval(42) and repr(value) == repr(autobahn_util.hlval(42))
        assert made
        made.clear()
    for value in ([], [("a", 1)], {"b": 2, "a": [1] * 40}, (), "text"):
        assert autobahn_protocol.pformat(value) == pprint.pformat(value)


def test_daphne_s_http_protocol_reads_twisted_s_own_classes_without_the_deprecation_proxy():
    assert "plain http module" in gate.install(fast_path=True)
    assert not isinstance(http_protocol.http, _ModuleProxy)
    for name in PlainHttpModule.NAMES:
        assert getattr(http_protocol.http, name) is getattr(http, name)
    # Daphne's request still works on it: made and written to through those names.
    server = daphne_server.Server(application=None, endpoints=["tcp:port=0"])  # not started
    server.connections = {}
    channel = DeadlineHTTPFactory(server).buildProtocol(("127.0.0.1", 0))
    channel.makeConnection(StringTransport())
    request = http_protocol.WebRequest(channel)
    request.setResponseCode(200)
    request.responseHeaders.setRawHeaders(b"content-length", [b"2"])
    request.write(b"ok")  # Twisted's write, through the namespace
    assert channel.transport.value().endswith(b"\r\n\r\nok")
    channel.connectionLost(Failure(ConnectionDone()))  # (its calls on the real reactor go with it)


def test_a_daphne_whose_http_global_is_no_longer_twisted_s_proxy_is_left_as_it_is(monkeypatch, caplog):
    monkeypatch.setattr(http_protocol, "http", SimpleNamespace(Request=http.Request))
    assert "plain http module" not in gate.install(fast_path=True)
    [warning] = gate_warnings(caplog)
    assert "plain http module: missing daphne.http_protocol.http (Twisted's module proxy)" in warning


# --- the deadline, through Twisted's public hooks ----------------------------------------------------------------
class HeldRequest(http.Request):
    """A request the test answers when it likes."""

    held: ClassVar[list[HeldRequest]] = []

    def process(self) -> None:
        self.held.append(self)


def clocked_channel(
    clock: task.Clock, kind: type[DeadlineHTTPChannel] = FastHTTPChannel, idle: int | None = None
) -> DeadlineHTTPChannel:
    """One of our channels (the fast path's by default) on a test's clock, its requests held (HeldRequest), with
    Twisted's idle timeout of `idle` seconds if given (as its factory sets it)."""
    channel = kind()
    if idle is not None:
        channel.timeOut = idle
    channel.callLater = clock.callLater
    channel.seconds = clock.seconds
    channel.requestFactory = HeldRequest
    HeldRequest.held = []
    return channel


@pytest.mark.parametrize("kind", [DeadlineHTTPChannel, FastHTTPChannel])
def test_the_deadline_is_off_while_a_request_is_served_and_restarts_with_the_next_one(settings, kind):
    settings.REQUEST_DEADLINE_SECONDS = 10
    clock, transport = task.Clock(), StringTransport()
    channel = clocked_channel(clock, kind)
    channel.makeConnection(transport)
    channel.dataReceived(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    [first] = HeldRequest.held
    channel.dataReceived(b"GET /b HTTP/1.1\r\n")  # pipelined, half of it: Twisted holds it while /a is served
    clock.advance(11)
    assert not transport.disconnecting  # the server's time, not the client's
    first.finish()  # Twisted replays the held bytes: the next request's deadline starts
    clock.advance(9)
    assert not transport.disconnecting
    clock.advance(2)
    assert transport.disconnecting  # /b did not arrive whole within 10 s


def test_twisted_s_idle_timeout_still_closes_a_connection_quiet_for_its_period_and_each_byte_restarts_it(settings):
    settings.REQUEST_DEADLINE_SECONDS = 0  # only the idle timeout
    clock, transport = task.Clock(), StringTransport()
    channel = clocked_channel(clock, idle=60)
    channel.makeConnection(transport)
    for _ in range(3):
        clock.advance(50)
        channel.dataReceived(b"X")  # a byte: the idle time starts again
    clock.advance(59.999)
    assert not transport.disconnecting
    clock.advance(0.001)  # exactly 60 s after the last byte
    assert transport.disconnecting


def test_the_idle_timeout_moved_sooner_comes_sooner_and_turned_off_never_comes(settings):
    settings.REQUEST_DEADLINE_SECONDS = 0
    clock, transport = task.Clock(), StringTransport()
    channel = clocked_channel(clock, idle=60)
    channel.makeConnection(transport)
    assert channel.setTimeout(5) == 60
    clock.advance(4.999)
    assert not transport.disconnecting
    clock.advance(0.001)
    assert transport.disconnecting
    quiet, transport = clocked_channel(clock, idle=60), StringTransport()
    quiet.makeConnection(transport)
    quiet.setTimeout(None)
    quiet.resetTimeout()  # off: nothing to restart
    clock.advance(3600)
    assert not transport.disconnecting


def test_a_kept_alive_connection_times_its_requests_with_a_call_or_two_and_leaves_none_once_gone(settings):
    """Twisted's callLater per request (the deadline, the idle timeout) became one call each, moved."""
    settings.REQUEST_DEADLINE_SECONDS = 10
    clock, transport = task.Clock(), StringTransport()
    channel = clocked_channel(clock, idle=60)
    made: list[float] = []
    channel.callLater = lambda delay, *args: made.append(delay) or clock.callLater(delay, *args)
    channel.makeConnection(transport)
    for n in range(50):
        channel.dataReceived(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
        HeldRequest.held.pop().finish()
        clock.advance(0.5)
    assert len(made) <= 6  # 25 s: the deadline's call came twice and was armed again; the idle one never came
    clock.advance(11)  # the deadline's call comes, finds no request begun, and is not armed again
    assert not transport.disconnecting and len(clock.getDelayedCalls()) == 1  # the idle timeout's
    channel.connectionLost(Failure(ConnectionDone()))
    assert clock.getDelayedCalls() == []


def test_a_connection_s_local_address_and_security_are_asked_of_it_once_not_per_request(monkeypatch):
    clock, transport = task.Clock(), StringTransport()
    asked: list[str] = []
    get_host, is_secure = transport.getHost, http.HTTPChannel.isSecure
    monkeypatch.setattr(transport, "getHost", lambda: asked.append("host") or get_host())
    monkeypatch.setattr(http.HTTPChannel, "isSecure", lambda channel: asked.append("secure") or is_secure(channel))
    channel = clocked_channel(clock)
    channel.makeConnection(transport)
    for n in range(3):
        channel.dataReceived(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
        request = HeldRequest.held.pop()
        assert request.getHost() == get_host() and request.isSecure() is False
        request.finish()
    assert asked == ["host", "secure"]


class UpgradedRequest(http.Request):
    """A request whose connection goes to another protocol, as Daphne's WebSocket upgrade gives it."""

    made: ClassVar[list[weakref.ref[http.Request]]] = []

    def process(self) -> None:
        UpgradedRequest.made.append(weakref.ref(self))
        self.channel.transport.protocol = object()


def test_a_connection_handed_to_a_websocket_leaves_no_timed_call_of_its_http_channel(settings):
    settings.REQUEST_DEADLINE_SECONDS = 10
    UpgradedRequest.made.clear()
    clock, transport = task.Clock(), StringTransport()
    channel = clocked_channel(clock, idle=60)
    channel.requestFactory = UpgradedRequest
    channel.makeConnection(transport)
    transport.protocol = channel  # (a TCP connection's protocol)
    assert len(clock.getDelayedCalls()) == 2
    channel.dataReceived(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
    assert clock.getDelayedCalls() == []  # the socket's protocol has it: no call of this channel's is left
    # Nor is its upgrade request kept: the channel lives as long as the socket (Daphne leaves it the transport's
    # producer), and the request with it was ~4 KiB of every socket's memory.
    assert channel.requests == []
    gc.collect()
    assert [made() for made in UpgradedRequest.made] == [None]


class Wrapper:
    """A wrapping transport (TLS's is one): the protocol it passes the bytes to."""

    def __init__(self, wrapped: Any) -> None:
        self.wrappedProtocol = wrapped


def test_a_wrapped_connection_is_handed_over_only_when_the_wrapper_passes_to_another_protocol(settings):
    settings.REQUEST_DEADLINE_SECONDS = 10
    clock = task.Clock()
    channel = clocked_channel(clock, idle=60)
    channel.makeConnection(StringTransport())
    channel.transport.protocol = Wrapper(Wrapper(channel))  # (STARTTLS: TCP → TLS → the channel)
    channel.dataReceived(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not channel._handed_over() and len(clock.getDelayedCalls()) >= 1  # the idle timeout still runs
    HeldRequest.held.pop().finish()
    channel.transport.wrappedProtocol = object()  # (Daphne's upgrade through a wrapping transport)
    del channel.transport.protocol
    assert channel._handed_over()


@pytest.mark.parametrize(("verbosity", "formatted"), [(0, False), (1, False), (2, True)])
def test_twisted_formats_its_own_request_line_only_where_daphne_shows_its_log(verbosity, formatted):
    """Below verbosity 2 Daphne sends Twisted's log nowhere: the line is not made for nothing."""
    server = daphne_server.Server(application=None, endpoints=["tcp:port=0"], verbosity=verbosity)  # not started
    factory = DeadlineHTTPFactory(server)
    lines: list[str] = []
    factory._logFormatter = lambda timestamp, request: "a line"
    factory._logFile = type("File", (), {"write": staticmethod(lines.append)})()
    factory.log(object())
    assert lines == (["a line\n"] if formatted else [])


# --- over the wire ------------------------------------------------------------------------------------------------
LISTENING = re.compile(r"^Listening on http://(\S+)$", re.MULTILINE)


async def received(ws: Any, n: int) -> list[dict[str, Any]]:
    return [await recv(ws) for _ in range(n)]


def listening_lines(server: Any) -> list[str]:
    return LISTENING.findall(server.log_path.read_text(errors="replace"))


@pytest.mark.wire
async def test_on_the_plain_path_sockets_close_with_codes_and_broadcasts_arrive(tmp_path, wire_sockets):
    with own_wire_server(tmp_path, {"LIVE_FAST_PATH": "0"}) as server:
        log = server.log_path.read_text(errors="replace")
        assert log.count(WARNING) == 1 and "LIVE_FAST_PATH=0" in log
        assert listening_lines(server) == [f"127.0.0.1:{server.port}"]

        refused = await wire_sockets(server, "not-a-token")
        assert await recv(refused) == error(WS_UNAUTHORIZED)
        await expect_close(refused, CLOSE_POLICY_VIOLATION)

        with httpx.Client(base_url=server.http_url, timeout=10) as api:
            room = new_classroom(api, 2)
            start(api, room.teacher, room.class_id)
        teacher = await wire_sockets(server, room.teacher)
        students = [await wire_sockets(server, student) for student in room.students]
        for i in range(5):
            await teacher.send(mark(room.students[0].id, "present" if i % 2 else "absent"))
        expected = [marked(room.students[0].id, "present" if i % 2 else "absent") for i in range(5)]
        got = await asyncio.gather(*(received(ws, 5) for ws in [teacher, *students]))
        assert got == [expected] * 3  # the teacher's echoes, and the broadcasts (through ASGI here)

        await students[1].send(b"x" * (64 * 1024 + 1))
        await expect_close(students[1], CLOSE_MESSAGE_TOO_BIG)


@pytest.mark.wire
def test_a_server_prints_where_it_listens_once(wire_server):
    from django.conf import settings

    assert listening_lines(wire_server) == [f"127.0.0.1:{wire_server.port}"]
    # The environment's LIVE_FAST_PATH, which the wire servers share: its plain path is the warned one.
    assert (WARNING in wire_server.log_path.read_text(errors="replace")) is not settings.LIVE_FAST_PATH


@pytest.mark.wire
def test_the_access_log_has_a_line_per_request_unless_turned_off(tmp_path, wire_server):
    def logged(server: Any, wait: float) -> list[str]:
        path = f"/nothing-here-{secrets.token_hex(4)}"  # a line of this request's own
        with httpx.Client(base_url=server.http_url, timeout=10) as api:
            assert api.get(path).status_code == 404
        deadline = time.monotonic() + wait
        while True:
            lines = [line for line in server.log_path.read_text(errors="replace").splitlines() if path in line]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    [line] = logged(wire_server, wait=5)  # on by default
    assert '/nothing-here-' in line and '" 404 ' in line
    with own_wire_server(tmp_path, {"ACCESS_LOG": "0"}) as quiet:
        assert logged(quiet, wait=1) == []
