"""Real loopback TCP links for the tests of what writes on sockets (server.write_now, server.fanout).

Each link is a connected loopback TCP pair whose server end is wrapped in Twisted's own `tcp.Connection`, with a
reactor that only records what the connection asks of it (so a test drives `doWrite` itself, as the reactor
would when the socket is writable). What the peer finally reads must be every byte, in order.
"""

from __future__ import annotations

import secrets
import select
import socket
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from autobahn.websocket.protocol import TrafficStats
from twisted.internet import tcp

from server.daphne_ext import FastWebSocketProtocol


class RecordingReactor:
    """What a FileDescriptor needs from its reactor, recorded: whether it waits to be told it can write."""

    def __init__(self) -> None:
        self.writers: set[Any] = set()
        self.readers: set[Any] = set()

    def addWriter(self, descriptor: Any) -> None:  # noqa: N802 (Twisted's names)
        self.writers.add(descriptor)

    def removeWriter(self, descriptor: Any) -> None:  # noqa: N802
        self.writers.discard(descriptor)

    def addReader(self, descriptor: Any) -> None:  # noqa: N802
        self.readers.add(descriptor)

    def removeReader(self, descriptor: Any) -> None:  # noqa: N802
        self.readers.discard(descriptor)


class Link:
    """A connected loopback TCP pair: `transport` (Twisted's connection on the server end) and `peer`."""

    def __init__(self, server_end: socket.socket, peer: socket.socket) -> None:
        self.reactor = RecordingReactor()
        self.transport = tcp.Connection(server_end, None, reactor=self.reactor)  # type: ignore[arg-type]
        self.transport.connected = 1
        self.peer = peer
        self.peer.setblocking(False)

    def read_all(self) -> bytes:
        """Everything the peer can read now."""
        chunks = []
        while True:
            try:
                chunk = self.peer.recv(1 << 20)
            except BlockingIOError:
                return b"".join(chunks)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def fill_kernel_buffers(self) -> bytes:
        """Send on the server end until the kernel takes no more (EAGAIN); returns what it took."""
        sent = []
        block = b"f" * 65536
        while True:
            try:
                n = self.transport.socket.send(block)
            except BlockingIOError:
                return b"".join(sent)
            sent.append(block[:n])

    def drain(self, expected_length: int) -> bytes:
        """Read on the peer while letting Twisted write what it buffered (as the reactor would), until the
        peer has `expected_length` bytes."""
        received = bytearray()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            select.select([self.peer], [], [], 0.01)  # wait for data (or the reactor's part) rather than spin
            received += self.read_all()
            if self.transport in self.reactor.writers:
                result = self.transport.doWrite()
                assert result is None, result
            if len(received) >= expected_length and self.transport not in self.reactor.writers:
                break
        received += self.read_all()
        return bytes(received)

    def buffered(self) -> int:
        return len(self.transport.dataBuffer) - self.transport.offset + self.transport._tempDataLen


@contextmanager
def loopback_link() -> Iterator[Link]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.create_connection(listener.getsockname())
        server_end, _ = listener.accept()
    # Fixed buffers (no autotuning), so that a few hundred kilobytes fill them.
    server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    made = Link(server_end, peer)
    try:
        yield made
    finally:
        server_end.close()
        peer.close()


def payload(n: int) -> bytes:
    return secrets.token_bytes(n)


class Producer:
    def pauseProducing(self) -> None:  # noqa: N802
        pass

    def resumeProducing(self) -> None:  # noqa: N802
        pass

    def stopProducing(self) -> None:  # noqa: N802
        pass


def open_protocol(link: Link, kind: type[FastWebSocketProtocol] = FastWebSocketProtocol) -> FastWebSocketProtocol:
    """Our protocol, open, on the link's transport (the handshake is Autobahn's and tested over the wire)."""
    protocol = kind()
    protocol.transport = link.transport
    protocol.state = protocol.STATE_OPEN
    protocol.send_queue = deque()
    protocol.logOctets = False
    protocol.trafficStats = TrafficStats()
    protocol._perMessageCompress = None
    protocol.muted = False
    return protocol


# Each state in which a transport must take Twisted's own path (nothing written now), as a test puts it there.
TWISTEDS_PATH_STATES = ["not connected", "disconnecting", "write side shut", "tls", "paused producer", "pull producer"]


def put_in_state(transport: Any, state: str) -> None:
    """Put `transport` in one of TWISTEDS_PATH_STATES."""
    if state == "not connected":
        transport.connected = 0
    elif state == "disconnecting":
        transport.disconnecting = True
    elif state == "write side shut":
        transport._writeDisconnected = True
    elif state == "tls":
        transport.TLS = True
    elif state == "paused producer":
        transport.registerProducer(Producer(), True)
        transport.producerPaused = True
    elif state == "pull producer":
        transport.registerProducer(Producer(), False)
    else:
        raise ValueError(state)
