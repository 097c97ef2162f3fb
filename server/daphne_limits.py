"""Two things Daphne needs for the limits against abuse (docs/production.md), installed by server.gate at start-up
(`RequestLimits`; on both paths: it uses Twisted's and Daphne's public hooks), and a lighter channel for the fast
path (`FastHTTPChannels`: Twisted's idle timeout moved rather than re-made, a connection's address asked once).

- **A request deadline.** A connection must deliver its whole request — headers and body, or a
  WebSocket's upgrade request — within REQUEST_DEADLINE_SECONDS (10 s; 0 = off) of opening, or, on a kept-alive
  connection, of the next request's first byte; else it is closed. Twisted's own timeout is an idle
  timeout (60 s, restarted by every byte received), so a client that trickles a request a byte at a time
  ("slowloris") would hold its connection for ever; Daphne's `--http-timeout` starts only once a request
  is complete and times the application, not the client. An idle kept-alive connection between requests
  is left to Twisted's idle timeout. After the upgrade request, a WebSocket's handshake is the server's
  part: Daphne's `--websocket_connect_timeout` bounds it (server.serve).
- **The client's address behind a proxy.** With `--proxy-headers` Daphne takes the *first*
  X-Forwarded-For hop, which the client writes itself (a new address per request would escape every
  limit). The contract's rule is the *last* hop: the one our own proxy appended. Both of Daphne's
  protocols (HTTP and WebSocket) use this rule, so `scope["client"]`, Django's REMOTE_ADDR, the limits
  (common.limits.client_ip) and Daphne's access log all name the same address.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daphne import http_protocol, utils, ws_protocol
from daphne import server as daphne_server
from django.conf import settings
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.http_headers import Headers

from server import http_guard
from server.gate import Extension, Patches, missing_attributes

_daphne_parse_x_forwarded_for = utils.parse_x_forwarded_for


class MovingCall:
    """A timed call whose time keeps moving and seldom comes: a request's deadline, Twisted's idle timeout. One
    reactor call per connection, which, when it comes before the time it is now due, is armed again for the rest
    (and moved sooner, should the time ever move before it). Twisted's callLater and cancel each cost the
    reactor's list of timed calls an entry (and a pass over it to find the next): a kept-alive connection made
    and cancelled two per request, ~4 % of a small request's samples (docs/benchmark.md, "HTTP"). The clock is
    the owner's: its `callLater` and `seconds` (a test's Clock)."""

    __slots__ = ("_owner", "_fire", "_due", "_call")

    def __init__(self, owner: Any, fire: str) -> None:
        self._owner = owner
        self._fire = fire  # the owner's method to call when the time comes
        self._due: float | None = None
        self._call: Any = None

    @property
    def pending(self) -> bool:
        return self._due is not None

    def start(self, delay: float) -> None:
        """Due `delay` seconds from now (whenever it was due before)."""
        due = self._owner.seconds() + delay
        self._due = due
        if self._call is None:
            self._call = self._owner.callLater(delay, self._come)
        elif self._call.getTime() > due:
            self._call.reset(delay)

    def clear(self) -> None:
        """Not due: the armed call, if any, comes and finds nothing to do."""
        self._due = None

    def stop(self) -> None:
        """Not due, and no call left with the reactor (the connection is gone)."""
        self._due = None
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None

    def _come(self) -> None:
        self._call = None
        if self._due is None:
            return
        left = self._due - self._owner.seconds()
        if left > 0:
            self._call = self._owner.callLater(left, self._come)
            return
        self._due = None
        getattr(self._owner, self._fire)()


class DeadlineHTTPChannel(http_guard.BodyLimitChannel):
    """Twisted's HTTP/1.1 channel with a deadline for receiving each request (a MovingCall) and, from
    server.http_guard, the body limit."""

    # Between requests: from the connection's start, and again once a request's response is done, until the
    # next request is all in (Twisted's own flag for this is private).
    _awaiting_request = True

    def __init__(self) -> None:
        super().__init__()
        self._deadline = MovingCall(self, "_deadline_passed")

    def seconds(self) -> float:
        """The time the channel's calls are timed in: its factory's reactor's (DeadlineHTTPFactory sets it, as
        Twisted sets `callLater`), else the installed reactor's; a test sets a Clock's."""
        from twisted.internet import reactor

        now: float = reactor.seconds()  # type: ignore[misc]  # (the installed reactor; the stubs see a module)
        return now

    def connectionMade(self) -> None:  # noqa: N802 (Twisted's names)
        super().connectionMade()
        self._start_deadline()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        if self._awaiting_request and not self._deadline.pending:
            self._start_deadline()  # the first bytes of the next request on a kept-alive connection
        super().dataReceived(data)

    def allContentReceived(self) -> None:  # noqa: N802
        self._awaiting_request = False
        self._deadline.clear()  # the whole request is in: what follows is the server's time
        super().allContentReceived()
        if self._handed_over():
            # A WebSocket upgrade: Daphne gave the connection to the socket's protocol, and this channel hears no
            # more of it, not even its loss. Its calls are stopped now rather than left to come to nothing (up to
            # a minute later, two reactor entries per socket). (The channel itself stays as long as the socket:
            # Daphne leaves it the transport's producer.) Its upgrade request is let go too: nothing reads it after
            # the hand-over, and the channel would keep it, its headers and its body buffer, for the socket's life.
            self._stop_calls()
            self.requests.clear()

    def _handed_over(self) -> bool:
        """Is the connection now another protocol's? Daphne's upgrade sets the transport's `protocol`, or the
        `wrappedProtocol` of a wrapping transport (TLS); this channel is then in neither chain of wrapped
        protocols. A transport that names no protocol at all (a test's) is not handed over."""
        transport = self.transport
        starts = [getattr(transport, name, None) for name in ("protocol", "wrappedProtocol")]
        starts = [protocol for protocol in starts if protocol is not None]
        for protocol in starts:
            for _ in range(8):  # (wrappers nest a few deep at most)
                if protocol is self:
                    return False
                protocol = getattr(protocol, "wrappedProtocol", None)
                if protocol is None:
                    break
        return bool(starts)

    def requestDone(self, request: Any) -> None:  # noqa: N802
        # Before Twisted's: it replays pipelined bytes (the next request's) through dataReceived.
        self._awaiting_request = True
        super().requestDone(request)

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        try:
            super().connectionLost(reason)
        finally:
            self._stop_calls()

    def _stop_calls(self) -> None:
        self._deadline.stop()

    def _start_deadline(self) -> None:
        if settings.REQUEST_DEADLINE_SECONDS:  # (0: off)
            self._deadline.start(settings.REQUEST_DEADLINE_SECONDS)

    def _deadline_passed(self) -> None:
        self.timeoutConnection()  # Twisted's: close, and abort if the client does not let go


class FastHTTPChannel(DeadlineHTTPChannel):
    """The deadline channel, lighter per request (FastHTTPChannels, fast path): Twisted's idle timeout as a
    MovingCall too, and what a connection's every request asks of it that cannot change while it lasts asked
    once — the local address (Twisted's Request asks it: a getsockname() call each time, ~1.6 % of a small
    request) and whether the transport is TLS (Daphne asks: an interface adaptation, ~1 %)."""

    _host: Any = None
    _secure: bool | None = None

    def __init__(self) -> None:
        super().__init__()
        self._idle = MovingCall(self, "timeoutConnection")

    # Twisted's TimeoutMixin (twisted/protocols/policies.py), the same promises on a MovingCall: setTimeout
    # returns the previous period, None turns the timeout off, and resetTimeout restarts only a timeout that
    # is on and has not come.
    def setTimeout(self, period: int | None) -> int | None:  # noqa: N802
        previous, self.timeOut = self.timeOut, period
        if period is None:
            self._idle.clear()
        else:
            self._idle.start(period)
        return previous

    def resetTimeout(self) -> None:  # noqa: N802
        if self._idle.pending and self.timeOut is not None:
            self._idle.start(self.timeOut)

    def _stop_calls(self) -> None:
        super()._stop_calls()
        self._idle.stop()

    def getHost(self) -> Any:  # noqa: N802
        if self._host is None:
            self._host = super().getHost()
        return self._host

    def isSecure(self) -> bool:  # noqa: N802
        if self._secure is None:
            self._secure = bool(super().isSecure())
        return self._secure


class DeadlineHTTPFactory(http_protocol.HTTPFactory):
    # Plain HTTP/1.1 channels (Daphne negotiates HTTP/2 only over its own TLS with the http2 extras,
    # which this project does not use: nginx terminates TLS).
    protocol = DeadlineHTTPChannel

    def buildProtocol(self, addr: Any) -> Any:  # noqa: N802 (Twisted's name)
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = http_guard.GuardedRequest  # Daphne's WebRequest, guarded (server.http_guard)
        protocol.seconds = self.reactor.seconds  # the clock of the calls Twisted gives it (`callLater`)
        return protocol

    def log(self, request: Any) -> None:
        """Twisted's own line per request (the combined log format) goes to Twisted's log, which Daphne sends
        nowhere below verbosity 2: it is not formatted then. Formatting it was about 5 % of a request's time
        under load (docs/benchmark.md, "HTTP"). Daphne's access log (stdout) is another, and unchanged."""
        if self.server.verbosity > 1:
            super().log(request)


def last_hop(values: Sequence[bytes]) -> str | None:
    """The last non-empty address in X-Forwarded-For header values (repeated headers in order)."""
    hops = [hop.strip() for hop in b",".join(values).decode("latin-1").split(",")]
    hops = [hop for hop in hops if hop]
    return hops[-1] if hops else None


def parse_x_forwarded_for(
    headers: Any,
    address_header_name: str | None = "X-Forwarded-For",
    port_header_name: str | None = "X-Forwarded-Port",
    proto_header_name: str | None = "X-Forwarded-Proto",
    original_addr: Any = None,
    original_scheme: str | None = None,
) -> tuple[Any, str | None]:
    """Daphne's parse_x_forwarded_for (same signature, same port and scheme), taking the last hop."""
    addr, scheme = _daphne_parse_x_forwarded_for(
        headers, address_header_name, port_header_name, proto_header_name, original_addr, original_scheme
    )
    if not address_header_name:
        return addr, scheme
    name = address_header_name.lower().encode()
    if isinstance(headers, Headers):
        values = headers.getRawHeaders(name) or []
    else:
        value = {key.lower(): item for key, item in headers.items()}.get(name)
        values = [] if value is None else value if isinstance(value, list) else [value]
    if not values:
        return addr, scheme
    hop = last_hop(values)
    if hop is None:  # an empty header: the peer (the proxy) is all we know
        return original_addr, scheme
    return [hop, addr[1] if addr else 0], scheme


class RequestLimits(Extension):
    """Our HTTP factory (the deadline) and the last hop: public hooks, so any release of the lines they were
    written for."""

    name = "request limits"
    versions = {"daphne": "4.2.*", "twisted": "26.10.*"}

    @classmethod
    def missing(cls) -> list[str]:
        return [
            *missing_attributes(daphne_server, ["HTTPFactory"], "daphne.server"),
            *missing_attributes(http_protocol.HTTPFactory, ["protocol", "buildProtocol", "log"]),
            *missing_attributes(
                daphne_server.Server(application=None, endpoints=["tcp:port=0"]),  # not started
                ["verbosity"],
                "daphne.server.Server()",
            ),
            *missing_attributes(http.HTTPChannel, [
                "connectionMade", "dataReceived", "allContentReceived", "requestDone", "connectionLost",
                "callLater", "timeoutConnection",
                # server.http_guard's channel and request
                "allHeadersReceived", "rawDataReceived", "length", "persistent",
            ]),
            *missing_attributes(http_protocol.WebRequest, ["handleContentChunk", "process"]),
            *missing_attributes(utils, ["parse_x_forwarded_for"], "daphne.utils"),
            *missing_attributes(http_protocol, ["parse_x_forwarded_for"], "daphne.http_protocol"),
            *missing_attributes(ws_protocol, ["parse_x_forwarded_for"], "daphne.ws_protocol"),
        ]

    @classmethod
    def setup_once(cls, patches: Patches) -> None:
        """Make Daphne's Server build our HTTP factory, and both protocols read the last hop."""
        patches.set(daphne_server, "HTTPFactory", DeadlineHTTPFactory)
        patches.set(http_protocol, "parse_x_forwarded_for", parse_x_forwarded_for)
        patches.set(ws_protocol, "parse_x_forwarded_for", parse_x_forwarded_for)


class FastHTTPChannels(Extension):
    """Our factory builds FastHTTPChannels: Twisted's TimeoutMixin and HTTPChannel methods overridden (public,
    but their callers' pattern — a timeout turned off and on per request, the address asked per request — is
    read from this release), so exactly the versions written for, on the fast path."""

    name = "fast http channels"
    versions = {"twisted": "26.10.0"}
    fast_path = True
    requires = (RequestLimits.name,)

    @classmethod
    def missing(cls) -> list[str]:
        return missing_attributes(http.HTTPChannel, ["setTimeout", "resetTimeout", "timeOut", "getHost", "isSecure"])

    @classmethod
    def setup_once(cls, patches: Patches) -> None:
        patches.set(DeadlineHTTPFactory, "protocol", FastHTTPChannel)
