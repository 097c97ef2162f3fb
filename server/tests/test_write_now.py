"""Write now (server.write_now) on real TCP sockets (server/tests/links.py), and the sendData that uses it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from daphne import cli as daphne_cli
from twisted.internet import main
from twisted.internet.testing import StringTransport

from server import gate
from server.daphne_ext import (
    SOCKET_EXTENSION,
    ApplicationQueue,
    AttendanceServer,
    DirectSocket,
    FastWebSocketProtocol,
)
from server.tests.links import TWISTEDS_PATH_STATES, Link, Producer, loopback_link, open_protocol, payload, put_in_state
from server.write_now import WriteNow, can_write_now, write_now


@pytest.fixture
def link() -> Iterator[Link]:
    with loopback_link() as made:
        yield made


@pytest.fixture
def fast_path() -> Iterator[None]:
    """The extensions installed as the launcher installs them (server.gate, LIVE_FAST_PATH on); removed after."""
    gate.reset()
    assert "write-now" in gate.install(fast_path=True)
    yield
    gate.reset()


def test_an_empty_buffer_sends_now_without_waiting_for_the_reactor(link):
    data = payload(300)
    assert write_now(link.transport, data) is True
    assert link.reactor.writers == set() and link.buffered() == 0  # no epoll registration, nothing buffered
    assert link.drain(len(data)) == data


def test_a_partial_write_hands_only_the_rest_to_twisted_and_nothing_is_lost_or_reordered(link):
    data = payload(1_000_000)  # far more than the small socket buffers take at once
    assert write_now(link.transport, data) is True
    assert 0 < link.buffered() < len(data), "expected a partial write"
    assert link.transport in link.reactor.writers  # Twisted sends the rest when the socket is writable
    assert link.drain(len(data)) == data


def test_eagain_hands_everything_to_twisted(link):
    filler = link.fill_kernel_buffers()
    data = payload(500)
    assert write_now(link.transport, data) is True
    assert link.buffered() == len(data) and link.transport in link.reactor.writers
    assert link.drain(len(filler) + len(data)) == filler + data


def test_with_bytes_already_buffered_it_leaves_the_frame_to_twisted_in_order(link):
    filler = link.fill_kernel_buffers()
    first, second = payload(400), payload(400)
    link.transport.write(first)  # waiting in Twisted's buffer for the reactor
    assert not can_write_now(link.transport)
    assert write_now(link.transport, second) is False  # the caller writes it through Twisted, behind `first`
    link.transport.write(second)
    expected = filler + first + second
    assert link.drain(len(expected)) == expected


def test_a_frame_after_a_partial_write_waits_behind_the_rest(link):
    big, small = payload(1_000_000), payload(100)
    assert write_now(link.transport, big) is True and link.buffered() > 0
    assert write_now(link.transport, small) is False  # something is buffered: not now
    link.transport.write(small)
    assert link.drain(len(big) + len(small)) == big + small


def test_a_socket_the_peer_reset_falls_back_to_twisted_which_closes_the_connection(link):
    link.peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    link.peer.close()  # linger 0: a reset
    assert write_now(link.transport, payload(100)) in (True, False)  # the first send may still succeed
    for _ in range(50):  # the reset reaches the sender on a following send
        if link.transport.dataBuffer or link.transport._tempDataBuffer:
            break
        write_now(link.transport, payload(100))
    assert link.buffered() > 0, "the failed send's bytes went to Twisted"
    assert link.transport.doWrite() is main.CONNECTION_LOST  # Twisted's own path meets the error


def test_a_closed_descriptor_falls_back_to_twisted(link):
    link.transport.socket.close()
    assert write_now(link.transport, b"frame") is True
    assert link.buffered() == 5
    assert link.transport.doWrite() is main.CONNECTION_LOST


@pytest.mark.parametrize("state", TWISTEDS_PATH_STATES)
def test_connections_that_must_take_twisteds_path_are_left_alone(link, state):
    transport = link.transport
    put_in_state(transport, state)
    assert write_now(transport, b"frame") is False
    assert link.read_all() == b"" and link.buffered() == 0


def test_a_streaming_producer_that_is_not_paused_allows_writing_now(link):
    # Daphne's HTTP channel stays the connection's streaming producer after the WebSocket upgrade.
    link.transport.registerProducer(Producer(), True)
    assert write_now(link.transport, b"frame") is True
    assert link.drain(5) == b"frame"


def test_transports_other_than_tcp_connections_are_left_alone():
    assert write_now(StringTransport(), b"frame") is False


# --- the protocol: sendData and prepared frames ---------------------------------------------------------------------
def test_send_data_writes_now_and_counts_the_octets(link, fast_path):
    protocol = open_protocol(link)
    protocol.sendData(b"frame-1")
    assert link.reactor.writers == set() and link.read_all() == b"frame-1"
    assert protocol.trafficStats.outgoingOctetsWireLevel == 7


def test_send_data_keeps_autobahns_queue_first(link, fast_path):
    protocol = open_protocol(link)
    triggered = []
    protocol._trigger = lambda: triggered.append(True)  # type: ignore[method-assign]
    assert protocol.send_queue == () and vars(protocol).get("_send_queue") is None  # no deque until needed
    protocol.sendData(b"queued", sync=True)  # Autobahn's own queue (sync/chopped writes) is made, not empty
    protocol.sendData(b"after")
    assert list(protocol.send_queue) == [(b"queued", True), (b"after", False)] and triggered
    assert link.read_all() == b""
    protocol.send_queue.clear()  # Autobahn's _trigger sent them: the same deque stays, empty
    protocol.sendData(b"now")
    assert link.read_all() == b"now"


def test_a_chopped_send_goes_through_autobahns_queue_in_order(link):
    protocol = open_protocol(link)
    protocol._trigger = lambda: None  # type: ignore[method-assign]
    protocol.sendData(b"abcdef", chopsize=4)
    assert list(protocol.send_queue) == [(b"abcd", True), (b"ef", True)]


def test_a_prepared_frame_is_one_text_frame_and_is_not_sent_on_a_closed_socket(link, fast_path):
    protocol = open_protocol(link)
    socket_ = DirectSocket(protocol)
    frame = DirectSocket.prepare('{"event":"DONE"}')
    assert socket_.send_prepared(frame) is True
    # FIN + text opcode, unmasked length 16, the payload: exactly what Autobahn's sendMessage frames.
    assert link.read_all() == b"\x81\x10" + b'{"event":"DONE"}'
    protocol.state = protocol.STATE_CLOSED
    assert socket_.send_prepared(frame) is False and link.read_all() == b""
    protocol.state, protocol.muted = protocol.STATE_OPEN, True
    assert socket_.send_prepared(frame) is False and link.read_all() == b""


def test_without_write_now_send_data_writes_through_twisted(link):
    gate.reset()  # write-now not installed (LIVE_FAST_PATH=0, or another Twisted)
    assert WriteNow.on is False
    protocol = open_protocol(link)
    protocol.sendData(b"frame-1")
    assert link.read_all() == b"" and link.transport in link.reactor.writers  # Twisted's deferred write
    assert link.drain(7) == b"frame-1"


# --- the scope extension: how the live hub reaches the protocol ---------------------------------------------------
async def test_our_daphne_gives_each_websocket_scope_a_direct_socket_and_http_none(fast_path):
    assert daphne_cli.CommandLineInterface.server_class is AttendanceServer  # installed as server.serve does
    scopes: list[dict[str, Any]] = []

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)

    server = AttendanceServer(application=application, endpoints=["tcp:port=0:interface=127.0.0.1"])  # not started
    server.connections = {}  # what Server.run() would set up
    websocket, http = FastWebSocketProtocol(), object()
    queues = []
    for protocol, kind in ((websocket, "websocket"), (http, "http")):
        server.connections[protocol] = {}
        queues.append(server.create_application(protocol, {"type": kind}))
        await server.connections[protocol]["application_instance"]
    direct = scopes[0]["extensions"][SOCKET_EXTENSION]
    assert isinstance(direct, DirectSocket) and direct._protocol is websocket
    assert "extensions" not in scopes[1]
    assert [type(queue) for queue in queues] == [ApplicationQueue, ApplicationQueue]  # the lighter queue for both


def test_protocol_options_are_read_from_the_factory_not_copied_into_each_connection() -> None:
    """Autobahn copies its ~29 options into every connection's __dict__; ours reads them from the factory
    (memory per socket), with the same values, and a connection may still set one of its own."""
    from autobahn.websocket.protocol import WebSocketServerProtocol

    from server.daphne_ext import FastWebSocketFactory

    factory = FastWebSocketFactory(None, server="test")
    factory.setProtocolOptions(maxMessagePayloadSize=4096, openHandshakeTimeout=7, autoPingTimeout=11)
    protocol = factory.buildProtocol(("127.0.0.1", 1))
    protocol.makeConnection(StringTransport())  # Autobahn's _connectionMade: where the copy used to happen
    options = WebSocketServerProtocol.CONFIG_ATTRS
    assert len(options) >= 25
    assert [name for name in options if name in vars(protocol)] == []
    for name in options:
        assert getattr(protocol, name) == getattr(factory, name), name
    assert (protocol.maxMessagePayloadSize, protocol.openHandshakeTimeout, protocol.autoPingTimeout) == (
        4096, 7, 11)
    assert protocol.failByDrop is False  # the project's own default (close 1009, not a dropped connection)
    other = factory.buildProtocol(("127.0.0.1", 2))
    protocol.autoPingInterval = 3  # one connection's own value shadows the factory's, for it alone
    assert (protocol.autoPingInterval, other.autoPingInterval) == (3, factory.autoPingInterval)


def test_the_handshake_leftovers_are_dropped_once_open_and_the_path_is_kept() -> None:
    from autobahn.websocket.types import ConnectionRequest

    from server.daphne_ext import FastWebSocketFactory

    protocol = FastWebSocketFactory(None, server="test").buildProtocol(("127.0.0.1", 1))
    headers = {"host": "127.0.0.1", "sec-websocket-key": "k" * 24, "x-padding": "p" * 500}
    params = {"token": ["t" * 200]}
    protocol.http_headers, protocol.http_request_params = headers, params
    protocol.http_request_data = b"GET /ws?token=" + b"t" * 200 + b" HTTP/1.1\r\n"
    protocol.http_status_line, protocol.http_request_uri = "GET /ws?token=t HTTP/1.1", "/ws?token=t"
    protocol.http_response_data, protocol._wskey = "HTTP/1.1 101 Switching Protocols\r\n", "k" * 24
    protocol.websocket_extensions = [("permessage-deflate", {})]
    protocol.request = ConnectionRequest("tcp4:127.0.0.1:1", headers, "127.0.0.1", "/ws", params, 13, "", [], [])

    protocol.drop_handshake_leftovers()

    for name in FastWebSocketProtocol.HANDSHAKE_LEFTOVERS:
        assert not getattr(protocol, name), name
    assert (protocol.request.headers, protocol.request.params, protocol.request.path) == ({}, {}, "/ws")


def test_a_prepared_frame_is_counted_and_logged_as_autobahn_does_and_queues_behind_what_it_holds(link, fast_path):
    protocol = open_protocol(link)
    socket_, frame = DirectSocket(protocol), DirectSocket.prepare("hi")
    logged: list[bytes] = []
    protocol.logOctets = True
    protocol.logTxOctets = lambda data, framed: logged.append(data)  # type: ignore[method-assign]
    before = protocol.trafficStats.outgoingOctetsWireLevel
    assert socket_.send_prepared(frame) is True
    assert link.read_all() == b"\x81\x02hi" and logged == [b"\x81\x02hi"]
    assert protocol.trafficStats.outgoingOctetsWireLevel == before + 4
    protocol._trigger = lambda: None  # type: ignore[method-assign]
    protocol.sendData(b"queued", sync=True)  # Autobahn holds a synced write: the frame goes behind it
    assert socket_.send_prepared(frame) is True
    assert list(protocol.send_queue) == [(b"queued", True), (b"\x81\x02hi", False)] and link.read_all() == b""


def test_a_prepared_frame_on_a_compressed_socket_is_sent_as_autobahn_sends_it(link, fast_path):
    protocol = open_protocol(link)
    sent: list[tuple[bytes, bool]] = []
    protocol._perMessageCompress = object()  # (this server negotiates none; a socket that had would compress)
    protocol.sendMessage = lambda payload, binary: sent.append((payload, binary))  # type: ignore[method-assign]
    assert DirectSocket(protocol).send_prepared(DirectSocket.prepare("hi")) is True
    assert sent == [(b"hi", False)] and link.read_all() == b""
