"""Write now: send a WebSocket frame on the socket at once when nothing is waiting to be sent before it.

Twisted's `transport.write` never writes: it appends to the transport's buffer, registers the socket for
writing with the reactor (an `epoll_ctl`), and sends on the next reactor pass, then unregisters (another
`epoll_ctl`). For a broadcast to thousands of sockets that deferred write was about half the server's CPU
(docs/benchmark.md). A socket whose buffer is empty can take the frame now: `send()` it, and hand only what
the kernel did not take to Twisted, which then sends it in order as usual.

Only the case where this is certainly equivalent to Twisted's own path takes it; everything else goes
through `transport.write` unchanged:

- a plain TCP connection (`twisted.internet.tcp.Connection`) — not TLS (neither a TLS wrapper protocol nor a
  started TLS: the bytes must be encrypted first), not a test's string transport;
- connected, not closing, the write side not shut down;
- nothing buffered (`dataBuffer` past its offset, `_tempDataBuffer`): a frame must never overtake bytes
  Twisted holds;
- no producer but a streaming one that is not paused (Daphne's HTTP channel stays registered as the
  connection's streaming producer after the upgrade): a paused producer means back-pressure, and a pull
  producer expects every byte to go through the transport.

`send()` itself: what it takes is sent; the rest (a partial write) goes to `transport.write`, behind
nothing. `EAGAIN`/`EWOULDBLOCK`/`ENOBUFS`: all of it to `transport.write`. Any other error (the peer reset
the connection, a closed descriptor): `transport.write` too, whose own write then meets the error and
closes the connection the way Twisted always does — this module never closes or loses a connection itself.

The fast protocol (server.daphne_ext) writes now only once server.gate has installed `WriteNow`: it reads
Twisted's private attributes, so only on the Twisted version it was written for.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from twisted.internet import tcp

from server.gate import Extension, Patches, missing_attributes

# What can_write_now reads of a connection (server/fanout.c reads the same).
CONNECTION_ATTRIBUTES = ("TLS", "connected", "disconnecting", "_writeDisconnected", "_tempDataBuffer", "dataBuffer",
                         "offset", "producer", "streamingProducer", "producerPaused", "socket")
# As in twisted.internet.tcp.Connection.writeSomeData: "try again later", not an error.
_RETRY_LATER = {errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS}


def can_write_now(transport: Any) -> bool:
    """Whether `transport` is a plain TCP connection with nothing waiting to be sent and no back-pressure."""
    if not isinstance(transport, tcp.Connection) or transport.TLS:
        return False
    if not transport.connected or transport.disconnecting or transport._writeDisconnected:
        return False
    if transport._tempDataBuffer or len(transport.dataBuffer) > transport.offset:
        return False
    producer = transport.producer
    return producer is None or (transport.streamingProducer and not transport.producerPaused)


def write_now(transport: Any, data: bytes) -> bool:
    """Send `data` on `transport`'s socket now, handing what is not sent to `transport.write`.

    Returns False, having done nothing, when the transport does not qualify (can_write_now); the caller
    then writes through Twisted as usual. Returns True when `data` was sent or handed over in order.
    """
    if not data or not can_write_now(transport):
        return False
    try:
        sent = transport.socket.send(data)
    except OSError as error:
        if error.errno not in _RETRY_LATER:
            # Twisted's next write on this socket meets the same error and closes the connection.
            transport.write(data)
            return True
        sent = 0
    if sent < len(data):
        transport.write(data[sent:])
    return True


class WriteNow(Extension):
    """The fast protocol's sends write now (`on`)."""

    name = "write-now"
    versions = {"twisted": "26.10.0"}
    fast_path = True
    requires = ("fast sockets",)  # the protocol whose sendData writes now
    on: ClassVar[bool] = False

    @classmethod
    def missing(cls) -> list[str]:
        with looked_at_connection() as connection:
            label = "twisted.internet.tcp.Connection()"
            return missing_attributes(connection, [*CONNECTION_ATTRIBUTES, "write"], label)

    @classmethod
    def setup_once(cls, patches: Patches) -> None:
        patches.set(cls, "on", True)


class _NoReactor:
    """A reactor for a connection that is only looked at, never registered."""


@contextmanager
def looked_at_connection() -> Iterator[Any]:
    """A connection as Twisted makes one (FileDescriptor sets some of its attributes in __init__), on a socket
    pair closed afterwards: for the gate's checks, never registered with a reactor."""
    own_end, other_end = socket.socketpair()
    try:
        yield tcp.Connection(own_end, None, reactor=_NoReactor())  # type: ignore[arg-type]
    finally:
        own_end.close()
        other_end.close()
