"""What the project needs from Daphne/Autobahn beyond what they do out of the box, as extensions that
server.gate installs at start-up when the installed versions are the ones they were written for.

Both paths (`CloseCodes`: Autobahn's public sendCloseFrame and failByDrop option):

- The auth ERROR closes with 1008 (policy violation); Autobahn lets applications use only 1000 and
  3000–4999, so our protocol sends such standard codes as a plain close frame.
- A message over the size limit is answered with close 1009 instead of a dropped TCP connection
  (Autobahn's `failByDrop`), so the client learns why.

Autobahn's debug-log arguments are made only when a debug message is formatted (`LazyDebugLogs`, fast path), and
Daphne's HTTP protocol reads Twisted's HTTP classes without Twisted's deprecation proxy (`PlainHttpModule`, fast
path).

The fast path (`FastSockets`; LIVE_FAST_PATH=0 or other versions leave it out, and Daphne's own server and
protocol serve instead):

- Broadcasts at the cost of a plain socket write (docs/benchmark.md): frames are written now when the
  connection's buffer is empty (server.write_now), and every WebSocket's ASGI scope carries a
  `DirectSocket` under `scope["extensions"][SOCKET_EXTENSION]`, through which the live hub writes one frame,
  built once, to each local recipient in a plain loop — no coroutine chain per recipient. Other ASGI
  servers (runserver, Channels' test communicator, Daphne's own server) do not set the extension, and the
  consumer then sends through ASGI as usual.
- Memory per socket: each WebSocket's ASGI input queue is an `ApplicationQueue` (no asyncio.Queue: its four
  deques are ~3 KiB per connection for a queue that is nearly always empty), and Autobahn's options are read
  from the factory instead of copied into every connection (`FactoryOption`), and what Autobahn keeps of the
  opening handshake is dropped once the socket is open.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from functools import partial
from pprint import pformat
from types import SimpleNamespace
from typing import Any, ClassVar

from autobahn.twisted import websocket as autobahn_twisted_websocket
from autobahn.websocket import protocol as autobahn_protocol
from autobahn.websocket.protocol import PreparedMessage
from daphne import cli as daphne_cli
from daphne import http_protocol as daphne_http_protocol
from daphne import server as daphne_server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet.testing import StringTransport
from twisted.python.deprecate import _ModuleProxy
from twisted.web import http as twisted_http

from server.gate import Extension, Patches, missing_attributes
from server.write_now import WriteNow, write_now

STANDARD_CLOSE_CODES = {1008, 1009, 1011}
NOTHING_QUEUED: tuple[()] = ()
SOCKET_EXTENSION = "live_attendance.direct_socket"


class DirectSocket:
    """One open WebSocket as the live hub sees it: send a prepared text frame now, outside ASGI.

    The consumer calls it only once it has accepted the socket, so frames keep their order with what it
    sent through ASGI before (both end in the same protocol, synchronously)."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: FastWebSocketProtocol) -> None:
        self._protocol = protocol

    @staticmethod
    def prepare(text: str) -> PreparedMessage:
        """The text frame of `text`, built once for any number of sockets (a server never masks; no
        compression is negotiated: Autobahn's server default)."""
        return PreparedMessage(text.encode(), False, False, False)

    def send_prepared(self, frame: PreparedMessage) -> bool:
        """Send `frame`; False if the socket is no longer open (the frame is then not sent, as Daphne
        drops an ASGI send to a closed socket).

        A broadcast calls this once per recipient, so the common case — no compression negotiated, nothing
        queued, writing now — skips Autobahn's sendPreparedMessage and sendData for the write they would make
        (FastWebSocketProtocol.send_now); any other case takes them as they are."""
        protocol = self._protocol
        if protocol.state != protocol.STATE_OPEN or protocol.muted:
            return False
        if protocol._perMessageCompress is None and protocol.send_now(frame.payloadHybi):
            return True
        protocol.sendPreparedMessage(frame)
        return True


class ApplicationQueue:
    """A WebSocket's ASGI input queue, as Daphne uses one (`put_nowait` from the protocol, `get` as the
    application's `receive`), in a few dozen bytes while empty: asyncio.Queue allocates four deques
    (~3 KiB) for every connection. Messages come out in the order they went in; a receiver cancelled after
    its message was handed to it gives the message back, first in line, so nothing is lost."""

    __slots__ = ("_messages", "_waiter", "_more_waiters")

    def __init__(self) -> None:
        self._messages: deque[dict[str, Any]] | None = None  # only while the application is behind
        # The receiver waiting now (an application has one receive loop); others, rarer, queue behind it.
        self._waiter: asyncio.Future[dict[str, Any]] | None = None
        self._more_waiters: deque[asyncio.Future[dict[str, Any]]] | None = None

    def qsize(self) -> int:
        return len(self._messages) if self._messages else 0

    def put_nowait(self, message: dict[str, Any]) -> None:
        while (waiter := self._pop_waiter()) is not None:
            if not waiter.done():
                waiter.set_result(message)
                return
        if self._messages is None:
            self._messages = deque()
        self._messages.append(message)

    def get_nowait(self) -> dict[str, Any]:
        """The next message if one is waiting (live.consumers.MeteredReceive counts them as they arrive)."""
        messages = self._messages
        if not messages:
            raise asyncio.QueueEmpty
        message = messages.popleft()
        if not messages:
            self._messages = None
        return message

    async def get(self) -> dict[str, Any]:
        if self._messages:
            return self.get_nowait()
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if self._waiter is None:
            self._waiter = waiter
        else:
            if self._more_waiters is None:
                self._more_waiters = deque()
            self._more_waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a message, then cancelled: give it back
                if self._messages is None:
                    self._messages = deque()
                self._messages.appendleft(waiter.result())
            elif waiter is self._waiter:
                self._pop_waiter()
            elif self._more_waiters is not None and waiter in self._more_waiters:
                self._more_waiters.remove(waiter)
            raise

    def _pop_waiter(self) -> asyncio.Future[dict[str, Any]] | None:
        """The first waiting receiver, taken out of line (the next one, if any, moves up)."""
        waiter, more = self._waiter, self._more_waiters
        self._waiter = more.popleft() if more else None
        if more is not None and not more:
            self._more_waiters = None
        return waiter


class AttendanceServer(daphne_server.Server):
    """Daphne's server, giving every connection an ApplicationQueue and each of our fast WebSockets a
    DirectSocket, and letting go of a connection as soon as it has ended."""

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        # Daphne's create_application (4.2), with a lighter input queue — for an HTTP request too, where
        # asyncio.Queue's four deques were ~1 % of a light request — and the socket extension.
        assert "application_instance" not in self.connections[protocol]
        if isinstance(protocol, FastWebSocketProtocol):
            scope.setdefault("extensions", {})[SOCKET_EXTENSION] = DirectSocket(protocol)
        input_queue = ApplicationQueue()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope, receive=input_queue.get, send=partial(self.handle_reply, protocol)
        )
        if protocol not in self.connections:
            return None
        instance = asyncio.ensure_future(application_instance, loop=asyncio.get_event_loop())
        self.connections[protocol]["application_instance"] = instance
        instance.add_done_callback(lambda _: self.forget_if_ended(protocol))
        return input_queue

    def protocol_disconnected(self, protocol: Any) -> None:
        if protocol not in self.connections:  # told again after it was forgotten (a WebSocket's reject, then close)
            return
        super().protocol_disconnected(protocol)
        self.forget_if_ended(protocol)

    def forget_if_ended(self, protocol: Any) -> None:
        """A connection gone whose application has finished without an error: dropped now, as Daphne's
        application_checker would drop it at its next turn. Daphne keeps every HTTP request's protocol, request
        and application for up to a second — a few thousand under load, each visited again by that checker and
        by the timeout checker, and kept alive for the collector to trace (docs/benchmark.md, "HTTP: Daphne's
        one-second memory"). Everything else is left to the checkers as before: an application still running
        (their close timeout), a connection still open, and an application that raised (its error logged, and
        answered with a 500 while its client is there — during which the connection is told it is gone, and the
        checker goes on with its entry)."""
        details = self.connections.get(protocol)
        if details is None or "disconnected" not in details:
            return
        instance = details.get("application_instance")
        if instance is None or not instance.done():
            return
        if instance.cancelled() or instance.exception() is None:
            del self.connections[protocol]


class FactoryOption:
    """One of Autobahn's protocol options, read from the factory until the protocol sets its own. A non-data
    descriptor: an assignment on the instance shadows it, as Autobahn's per-connection copy would."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, protocol: Any, owner: type | None = None) -> Any:
        if protocol is None:
            return self
        return getattr(protocol.factory, self.name)


class AttendanceWebSocketProtocol(WebSocketProtocol):
    """Daphne's WebSocket protocol, closing with the standard codes the contract uses (on both paths)."""

    def serverClose(self, code: int | None = None) -> None:  # noqa: N802 (Daphne's name)
        if code in STANDARD_CLOSE_CODES and self.state == self.STATE_OPEN:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            super().serverClose(code)


class FastWebSocketProtocol(AttendanceWebSocketProtocol):
    """The fast path's protocol: writes now, and keeps a few hundred bytes per socket instead of kilobytes."""

    # Autobahn copies each of its ~29 options from the factory into every connection's __dict__ (and logs
    # them, pformat'ed, at debug level): with thousands of sockets that is memory and connect time for
    # values every connection shares. Read through FactoryOption instead (set below).
    CONFIG_ATTRS = ()
    # What Autobahn keeps of the opening handshake (headers, the raw request and response, the parsed query
    # and extension offers): ~3 KiB per socket that nothing reads once the socket is open. The ASGI scope
    # keeps its own copies (headers, query string), untouched.
    HANDSHAKE_LEFTOVERS: dict[str, Any] = {
        "http_headers": dict, "http_request_params": dict, "websocket_extensions": list,
        "http_request_data": bytes, "http_status_line": str, "http_request_uri": str,
        "http_response_data": str, "_wskey": str,
    }

    def onOpen(self) -> None:  # noqa: N802 (Autobahn's name)
        super().onOpen()
        self.drop_handshake_leftovers()

    def drop_handshake_leftovers(self) -> None:
        """Replace the handshake's leftovers with empty values of their types (as if never filled)."""
        for name, empty in self.HANDSHAKE_LEFTOVERS.items():
            if name in self.__dict__:
                setattr(self, name, empty())
        request = getattr(self, "request", None)
        if request is not None:  # Daphne logs request.path at close; the headers and query go
            request.headers, request.params = {}, {}

    # Autobahn's queue for synced and chopped sends (which this project never makes): a 760-byte deque per
    # socket, made only when something is to be queued; until then an empty tuple stands in (Autobahn only
    # reads its length then).
    @property
    def send_queue(self) -> Any:
        queue = self.__dict__.get("_send_queue")
        return NOTHING_QUEUED if queue is None else queue

    @send_queue.setter
    def send_queue(self, queue: Any) -> None:
        self.__dict__["_send_queue"] = queue if queue else None  # Autobahn sets an empty deque at connect

    def _queue_for_sending(self) -> None:
        if self.__dict__.get("_send_queue") is None:
            self.__dict__["_send_queue"] = deque()

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:  # noqa: N802
        """Autobahn's sendData, writing now when it can (server.write_now, when installed); Autobahn's own
        queue (sync writes, chopped writes, anything queued before) and every other case take Autobahn's path."""
        if sync or chopsize:
            self._queue_for_sending()
        if sync or chopsize or not self.send_now(data):
            super().sendData(data, sync, chopsize)

    def send_now(self, data: bytes) -> bool:
        """Autobahn's direct write of `data`, now (server.write_now) and with its bookkeeping; False, having done
        nothing, when anything is queued before it or write-now is not installed or cannot write on this
        transport (the caller then takes Autobahn's path)."""
        if self.__dict__.get("_send_queue") or not WriteNow.on or not write_now(self.transport, data):
            return False
        if self.state == self.STATE_OPEN:
            self.trafficStats.outgoingOctetsWireLevel += len(data)
        elif self.state in (self.STATE_CONNECTING, self.STATE_PROXY_CONNECTING):
            self.trafficStats.preopenOutgoingOctetsWireLevel += len(data)
        if self.logOctets:
            self.logTxOctets(data, False)
        return True


for _option in getattr(WebSocketProtocol, "CONFIG_ATTRS", ()):
    if not hasattr(WebSocketProtocol, _option):  # a value of the class itself wins, as in Autobahn's copy
        setattr(FastWebSocketProtocol, _option, FactoryOption(_option))


class AttendanceWebSocketFactory(WebSocketFactory):
    protocol = AttendanceWebSocketProtocol

    def setProtocolOptions(self, **options: Any) -> None:  # noqa: N802 (Autobahn's name)
        super().setProtocolOptions(failByDrop=False, **options)


class FastWebSocketFactory(AttendanceWebSocketFactory):
    protocol = FastWebSocketProtocol


class LazyLogText:
    """What one of Autobahn's log helpers makes of a value, made only when a log message is formatted.

    Autobahn colours the arguments of its debug messages as it calls the logger (`hltype`, `hlval`: click
    styles), and pretty-prints its options into one at every connect: ~5 % of a connect's CPU and some of
    every frame's, for messages that are dropped unless debug logging is on. A LazyLogText formats to exactly
    what the helper would have returned."""

    __slots__ = ("_helper", "_value")

    def __init__(self, helper: Callable[[Any], str], value: Any) -> None:
        self._helper = helper
        self._value = value

    def __str__(self) -> str:
        return self._helper(self._value)

    def __format__(self, spec: str) -> str:
        return format(self._helper(self._value), spec)

    def __repr__(self) -> str:
        return repr(self._helper(self._value))


def lazy_log_helper(helper: Callable[[Any], str]) -> Callable[[Any], LazyLogText]:
    """`helper`, applied only when the log message it is an argument of is formatted."""

    def lazy(value: Any) -> LazyLogText:
        return LazyLogText(helper, value)

    lazy.__wrapped__ = helper  # type: ignore[attr-defined]
    return lazy


def quick_pformat(value: Any) -> str:
    """pprint.pformat, at once for the empty list the fast protocol's `_connectionMade` logs (its options
    are read from the factory, none copied: server.daphne_ext.FactoryOption); pformat builds a printer for it."""
    if type(value) is list and not value:
        return "[]"
    return pformat(value)


# --- the extensions, as server.gate installs them ------------------------------------------------------------
class CloseCodes(Extension):
    """Our protocol (close 1008/1009 as close frames) in Daphne's WebSocket factory: public Autobahn API only,
    so any release of the lines it was written for."""

    name = "close codes"
    versions = {"daphne": "4.2.*", "autobahn": "26.11.*"}

    @classmethod
    def missing(cls) -> list[str]:
        missing = missing_attributes(daphne_server, ["WebSocketFactory"], "daphne.server")
        missing += missing_attributes(WebSocketProtocol, ["serverClose", "sendCloseFrame", "STATE_OPEN"])
        factory = AttendanceWebSocketFactory(None, server="gate")
        factory.setProtocolOptions()  # a TypeError here (no failByDrop option) fails the check too
        if getattr(factory, "failByDrop", None) is not False:
            missing.append("Autobahn's failByDrop option")
        return missing

    @classmethod
    def setup_once(cls, patches: Patches) -> None:
        patches.set(daphne_server, "WebSocketFactory", AttendanceWebSocketFactory)  # Server.run builds it


class FastSockets(Extension):
    """Our server (DirectSocket, ApplicationQueue) and fast protocol (FactoryOption, no handshake leftovers,
    a lazy send queue): Daphne's and Autobahn's internals, so exactly the versions they were written for."""

    name = "fast sockets"
    versions = {"daphne": "4.2.3", "autobahn": "26.11.1"}
    fast_path = True
    requires = (CloseCodes.name,)

    @classmethod
    def missing(cls) -> list[str]:
        missing = missing_attributes(daphne_cli.CommandLineInterface, ["server_class"])
        missing += missing_attributes(daphne_server.Server, [
            "create_application", "handle_reply", "protocol_disconnected", "application_checker"])
        server = daphne_server.Server(application=None, endpoints=["tcp:port=0"])  # not started
        missing += missing_attributes(server, ["application"], "daphne.server.Server()")
        missing += missing_attributes(WebSocketProtocol, [
            "CONFIG_ATTRS", "onOpen", "sendData", "sendPreparedMessage", "_trigger", "logTxOctets", "muted",
            "STATE_OPEN", "STATE_CONNECTING", "STATE_PROXY_CONNECTING",
        ])
        # A connection as Autobahn sets one up (no handshake timer: nothing is left scheduled).
        factory = FastWebSocketFactory(None, server="gate")
        factory.setProtocolOptions(openHandshakeTimeout=0)
        protocol = factory.buildProtocol(("127.0.0.1", 0))
        protocol.makeConnection(StringTransport())  # type: ignore[no-untyped-call]
        label = "a connected WebSocketProtocol"
        missing += missing_attributes(
            protocol, ["state", "trafficStats", "logOctets", "factory", "_perMessageCompress"], label)
        missing += missing_attributes(DirectSocket.prepare("gate"), ["payloadHybi"], "PreparedMessage()")
        missing += missing_attributes(protocol.trafficStats, [
            "outgoingOctetsWireLevel", "preopenOutgoingOctetsWireLevel"], "TrafficStats")
        if "_send_queue" not in vars(protocol):
            missing.append(f"{label}.send_queue (set at connect)")
        copied = [name for name in getattr(WebSocketProtocol, "CONFIG_ATTRS", ()) if name in vars(protocol)]
        if copied:
            missing.append(f"options read from the factory (Autobahn copied {', '.join(copied)})")
        return missing

    @classmethod
    def setup_once(cls, patches: Patches) -> None:
        patches.set(daphne_server, "WebSocketFactory", FastWebSocketFactory)
        patches.set(daphne_cli.CommandLineInterface, "server_class", AttendanceServer)  # the CLI builds it


class LazyDebugLogs(Extension):
    """Autobahn's debug-log helpers made lazy (LazyLogText) in the two modules that call them for every
    connection and frame. Each name is used there only as a log argument (and `pformat` also for Timings'
    str, which quick_pformat leaves exact): checked for exactly the version it was read in."""

    name = "lazy debug logs"
    versions = {"autobahn": "26.11.1"}
    fast_path = True
    HELPERS: ClassVar[dict[Any, tuple[str, ...]]] = {
        autobahn_protocol: ("hltype", "hlval"),
        autobahn_twisted_websocket: ("hltype", "hlval"),
    }

    @classmethod
    def missing(cls) -> list[str]:
        missing = missing_attributes(autobahn_protocol, ["pformat"], "autobahn.websocket.protocol")
        for module, names in cls.HELPERS.items():
            missing += missing_attributes(module, names, module.__name__)
        return missing

    @classmethod
    def setup_once(cls, patches: Patches) -> None:
        for module, names in cls.HELPERS.items():
            for name in names:
                patches.set(module, name, lazy_log_helper(getattr(module, name)))
        patches.set(autobahn_protocol, "pformat", quick_pformat)


class PlainHttpModule(Extension):
    """Daphne's HTTP protocol (daphne/http_protocol.py) reaches Twisted's HTTP classes through its module
    global `http`: `http.Request.__init__`, `.write`, `.finish`, `.connectionLost` for every request. Twisted
    puts a proxy in front of that module to warn about its deprecated names (twisted.python.deprecate's
    _ModuleProxy), whose Python-level __getattribute__ ran on each of those reads: ~2 % of GET /auth/me's
    samples (docs/benchmark.md, "HTTP"). Here the global is a namespace of the names that module reads, taken
    once through the proxy: the same objects, none of them deprecated. Checked for exactly the versions it was
    read in: a Daphne that reads another name would find it missing (an AttributeError), so no other is
    trusted."""

    name = "plain http module"
    versions = {"daphne": "4.2.3", "twisted": "26.10.0"}
    fast_path = True
    NAMES = ("Request", "HTTPFactory", "H2_ENABLED")

    @classmethod
    def missing(cls) -> list[str]:
        missing = missing_attributes(twisted_http, cls.NAMES, "twisted.web.http")
        if not isinstance(getattr(daphne_http_protocol, "http", None), _ModuleProxy):
            missing.append("daphne.http_protocol.http (Twisted's module proxy)")
        return missing

    @classmethod
    def setup_once(cls, patches: Patches) -> None:
        names = {name: getattr(twisted_http, name) for name in cls.NAMES}
        patches.set(daphne_http_protocol, "http", SimpleNamespace(**names))
