"""What Daphne's HTTP channel refuses, or leaves alone, before a request reaches the application.

- **Bodies over the limit** (settings.DATA_UPLOAD_MAX_MEMORY_SIZE, 1 MiB) are refused with the contract's 413
  without being read: at once when `Content-Length` says more, or as soon as more has arrived of a chunked
  body. Out of the box Twisted spools any body to a file and Daphne then hands it to the application whole, in
  memory, before Django looks at its size. After the 413 the connection is half-closed and what the client
  still sends is read and dropped for LINGER_SECONDS, so that the client can read the answer before the
  connection is closed (closing with unread input would reset it, and a reset may discard the answer).
- **Form bodies are not parsed.** Twisted parses urlencoded and multipart POST bodies into `request.args`,
  which nothing reads (Daphne passes the raw body on), and answers a body that does not parse as multipart
  with a bare 400 before the application sees it; the contract reads every body as JSON whatever its
  Content-Type (common.api.parse_body).
- **A WebSocket upgrade on a path with no socket** (live.routing) is served as the plain HTTP request it
  also is: Django's catch-all answers the contract's JSON 404. Channels' router would raise instead, which
  Daphne logs with a traceback and answers with a bare 500.

server.daphne_limits builds its channels and requests from these classes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from daphne.http_protocol import WebRequest
from django.conf import settings
from django.http import HttpResponse
from twisted.internet.interfaces import ITCPTransport
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http

from common import api, messages

# How long what a refused client still sends is read and dropped before the connection is closed.
LINGER_SECONDS = 2.0


def body_limit() -> int | None:
    """The largest body accepted, in bytes (None: no limit, as Django reads None)."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large(size: int) -> bool:
    limit = body_limit()
    return limit is not None and size > limit


def raw_response(response: HttpResponse) -> bytes:
    """A complete HTTP/1.1 response, closing the connection, from one of Django's (for answers the channel
    gives itself: the envelope stays common.api's)."""
    lines = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
    lines += [f"{name}: {value}" for name, value in response.items()]
    lines += [f"Content-Length: {len(response.content)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.content


class BodyLimitChannel(http.HTTPChannel):
    """Twisted's HTTP/1.1 channel, refusing bodies over the limit unread."""

    body_refused = False
    _linger_call: Any = None

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 (Twisted's names)
        if self.body_refused:
            return  # lingering: dropped unread
        super().dataReceived(data)

    def rawDataReceived(self, data: bytes) -> None:  # noqa: N802
        if self.body_refused:
            return  # what followed the headers of a refused request, in the same read
        super().rawDataReceived(data)

    def allHeadersReceived(self) -> None:  # noqa: N802
        # `length` is the Content-Length (None when chunked): refused before Twisted makes room for the body
        # or tells an `Expect: 100-continue` client to send it.
        if self.length is not None and too_large(self.length):
            self.refuse_too_large()
            return
        super().allHeadersReceived()

    def allContentReceived(self) -> None:  # noqa: N802
        if self.body_refused:
            return  # the end of a chunked body already refused: nothing goes to the application
        super().allContentReceived()

    def refuse_too_large(self) -> None:
        """Answer 413 now, half-close, and close after LINGER_SECONDS (or when the client does)."""
        transport: Any = self.transport
        if self.body_refused or transport is None:
            return
        self.body_refused = True
        self.persistent = False
        transport.write(raw_response(api.fail(413, messages.PAYLOAD_TOO_LARGE)))
        # The channel stops being the transport's producer, which would otherwise hold the half-close back.
        transport.unregisterProducer()
        if ITCPTransport.providedBy(transport):
            transport.loseWriteConnection()  # the answer, then FIN; the client's data is still read
            self._linger_call = self.callLater(LINGER_SECONDS, self._linger_over)
        else:
            transport.loseConnection()

    def _linger_over(self) -> None:
        self._linger_call = None
        transport: Any = self.transport
        if transport is not None:
            transport.abortConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # noqa: N802
        if self._linger_call is not None and self._linger_call.active():
            self._linger_call.cancel()
        self._linger_call = None
        super().connectionLost(reason)


class GuardedRequest(WebRequest):
    """Daphne's request, with Twisted's form parsing off, a count of the body received so far, and WebSocket
    upgrades only where a socket is."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(*args, **kwargs)
        self.body_received = 0

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802 (Twisted's name)
        channel = self.channel
        if channel is None or channel.body_refused:
            return
        self.body_received += len(data)
        if too_large(self.body_received):  # only a chunked body can: a Content-Length was checked before
            channel.refuse_too_large()
            return
        super().handleContentChunk(data)

    def process(self) -> Any:
        if self._asks_for_websocket() and not _websocket_path(self.path):
            self.requestHeaders.removeHeader(b"Upgrade")  # Daphne then serves it as HTTP
        return super().process()

    def _asks_for_websocket(self) -> bool:
        # Daphne's own test (daphne.http_protocol.WebRequest.process): the first Upgrade header.
        upgrade = self.requestHeaders.getRawHeaders(b"Upgrade")
        return bool(upgrade) and upgrade[0].lower() == b"websocket"


def _websocket_path(raw_path: bytes) -> bool:
    from live.routing import is_websocket_path  # the consumers' modules load with the application

    try:
        path = raw_path.decode("ascii")
    except UnicodeDecodeError:
        return False  # Daphne refuses such a path as HTTP (400)
    return is_websocket_path(unquote(path))  # percent-decoded, as Daphne gives the scope its path
