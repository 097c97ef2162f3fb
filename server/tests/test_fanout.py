"""The native fan-out (server/fanout.c through server.fanout.send_text_now) on real loopback TCP sockets.

It must do for each member exactly what the Python path does (the consumer's deliver_now → DirectSocket.send_prepared
→ send_now → server.write_now), or hand the member back for that path to decide: these tests check each case
against what a peer finally reads, and that members handed back are untouched.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from twisted.internet import main

from server import fanout, gate
from server.daphne_ext import DirectSocket, FastWebSocketFactory, FastWebSocketProtocol
from server.fanout import NativeFanOut, send_text_now
from server.tests.links import TWISTEDS_PATH_STATES, Link, Producer, loopback_link, open_protocol, put_in_state

pytestmark = pytest.mark.skipif(fanout._fanout is None, reason="server._fanout is not built (server.build_native)")

TEXT = '{"event":"ATTENDANCE_MARKED","data":{"studentId":"65f1c0ffee0123456789abcd","status":"present"}}'
FRAME = DirectSocket.prepare(TEXT).payloadHybi


class Member:
    """What the hub hands over: a consumer's member_id and, once it takes broadcasts now, its DirectSocket."""

    def __init__(self, member_id: str, protocol: FastWebSocketProtocol | None) -> None:
        self.member_id = member_id
        self.direct_ready = None if protocol is None else DirectSocket(protocol)

    def __repr__(self) -> str:
        return f"Member({self.member_id})"


@pytest.fixture(autouse=True)
def installed() -> Iterator[None]:
    """The extensions as the launcher installs them; removed after."""
    gate.reset()
    assert "native fan-out" in gate.install(fast_path=True)
    assert NativeFanOut.on is True
    yield
    gate.reset()


@pytest.fixture
def links() -> Iterator[list[Link]]:
    with ExitStack() as stack:
        yield [stack.enter_context(loopback_link()) for _ in range(4)]


def members_on(links: list[Link]) -> list[Member]:
    return [Member(f"m{index}", open_protocol(link)) for index, link in enumerate(links)]


def test_every_ready_member_reads_the_frame_now_and_it_is_counted(links):
    members = members_on(links)
    assert send_text_now(members, None, TEXT) == []
    for link, member in zip(links, members, strict=True):
        assert link.read_all() == FRAME  # written now: no reactor pass, nothing buffered
        assert link.reactor.writers == set() and link.buffered() == 0
        assert member.direct_ready._protocol.trafficStats.outgoingOctetsWireLevel == len(FRAME)


def test_the_member_skipped_gets_nothing_and_is_not_handed_back(links):
    members = members_on(links)
    assert send_text_now(members, "m1", TEXT) == []
    assert [link.read_all() for link in links] == [FRAME, b"", FRAME, FRAME]


def test_members_not_ready_are_handed_back_in_order_untouched(links):
    members = members_on(links)
    not_yet = Member("not accepted", None)
    no_attribute = type("Bare", (), {"member_id": "bare"})()
    given = [not_yet, members[0], no_attribute, members[1]]
    assert send_text_now(given, None, TEXT) == [not_yet, no_attribute]
    assert [link.read_all() for link in links[:2]] == [FRAME, FRAME]


@pytest.mark.parametrize("state", ["closing", "muted", "compressed", "autobahn queue"])
def test_a_protocol_that_is_not_the_plain_case_is_handed_back(links, state):
    members = members_on(links[:2])
    protocol = members[1].direct_ready._protocol
    if state == "closing":
        protocol.state = protocol.STATE_CLOSING
    elif state == "muted":
        protocol.muted = True
    elif state == "compressed":
        protocol._perMessageCompress = object()
    else:
        protocol.send_queue = [(b"queued", True)]
    assert send_text_now(members, None, TEXT) == [members[1]]  # for send_prepared to decide, as before
    assert links[0].read_all() == FRAME and links[1].read_all() == b""
    assert protocol.trafficStats.outgoingOctetsWireLevel == 0


class OtherProtocol(FastWebSocketProtocol):
    """A subclass could make any attribute a property: only the exact class is taken."""


def test_a_protocol_or_transport_of_another_class_is_handed_back(links):
    members = members_on(links[:3])
    members[1].direct_ready = DirectSocket(open_protocol(links[1], OtherProtocol))
    members[2].direct_ready._protocol.transport = type("OtherTransport", (type(links[2].transport),), {})(
        links[2].transport.socket, None, reactor=links[2].reactor)
    assert send_text_now(members, None, TEXT) == members[1:]
    assert [link.read_all() for link in links[:3]] == [FRAME, b"", b""]


def test_a_data_descriptor_on_a_name_read_from_dict_leaves_the_fan_out_out(monkeypatch, caplog):
    gate.reset()
    monkeypatch.setattr(FastWebSocketProtocol, "muted", property(lambda self: False), raising=False)
    assert "native fan-out" not in gate.install(fast_path=True)
    assert "muted (a data descriptor: read from __dict__ by server/fanout.c)" in caplog.text


@pytest.mark.parametrize("state", [*TWISTEDS_PATH_STATES, "buffered", "buffered after a reactor pass"])
def test_a_transport_that_is_not_the_plain_case_is_handed_back(links, state):
    members = members_on(links[:2])
    transport = links[1].transport
    if state in TWISTEDS_PATH_STATES:
        put_in_state(transport, state)
    else:
        links[1].fill_kernel_buffers()
        transport.write(b"held by Twisted")  # the frame must not overtake it (in _tempDataBuffer until a pass)
        if state == "buffered after a reactor pass":
            transport.doWrite()  # the kernel takes nothing: now in dataBuffer, past its offset
            assert not transport._tempDataBuffer and len(transport.dataBuffer) > transport.offset
    assert send_text_now(members, None, TEXT) == [members[1]]
    assert links[0].read_all() == FRAME


def test_a_streaming_producer_that_is_not_paused_still_takes_the_frame_now(links):
    # Daphne's HTTP channel stays the connection's streaming producer after the WebSocket upgrade.
    links[0].transport.registerProducer(Producer(), True)
    assert send_text_now(members_on(links[:1]), None, TEXT) == []
    assert links[0].read_all() == FRAME


def test_what_a_full_socket_does_not_take_goes_to_twisted_in_order(links):
    members = members_on(links[:2])
    filler = links[1].fill_kernel_buffers()  # the kernel takes nothing more: EAGAIN
    assert send_text_now(members, None, TEXT) == []
    assert links[0].read_all() == FRAME
    assert links[1].buffered() == len(FRAME) and links[1].transport in links[1].reactor.writers
    assert links[1].drain(len(filler) + len(FRAME)) == filler + FRAME
    assert members[1].direct_ready._protocol.trafficStats.outgoingOctetsWireLevel == len(FRAME)  # as sendData counts


def test_a_partial_write_hands_only_the_rest_to_twisted(links):
    link = links[0]
    text = "x" * 1_000_000  # far more than the small socket buffers take at once
    frame = DirectSocket.prepare(text).payloadHybi
    assert send_text_now(members_on([link]), None, text) == []
    assert 0 < link.buffered() < len(frame), "expected a partial write"
    assert link.drain(len(frame)) == frame


def test_a_reset_connection_falls_back_to_twisted_which_closes_it(links):
    link = links[0]
    members = members_on([link])
    link.peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    link.peer.close()  # linger 0: a reset, which reaches the sender on a following send
    for _ in range(50):
        assert send_text_now(members, None, TEXT) == []
        if link.buffered():
            break
    assert link.buffered() > 0, "the failed send's bytes went to Twisted"
    assert link.transport.doWrite() is main.CONNECTION_LOST  # Twisted's own path meets the error


def test_a_closed_descriptor_is_handed_back_and_its_path_falls_back_to_twisted(links):
    link = links[0]
    members = members_on([link])
    link.transport.socket.close()  # its fileno() is -1: no descriptor to write on
    assert send_text_now(members, None, TEXT) == members
    assert members[0].direct_ready.send_prepared(DirectSocket.prepare(TEXT)) is True  # what the hub does next
    assert link.buffered() == len(FRAME) and link.transport.doWrite() is main.CONNECTION_LOST


def test_octets_are_logged_as_autobahn_logs_them_from_the_protocol_or_its_factory(links):
    logged: list[tuple[str, bytes]] = []
    factory = FastWebSocketFactory(None, server="test")
    factory.logOctets = True
    members = members_on(links[:3])
    for index, member in enumerate(members):
        protocol: Any = member.direct_ready._protocol
        protocol.logTxOctets = lambda data, framed, index=index: logged.append((f"m{index}", data))
        protocol.factory = factory
    del members[0].direct_ready._protocol.logOctets  # its factory's: on
    del members[1].direct_ready._protocol.logOctets
    members[2].direct_ready._protocol.logOctets = False  # its own: off
    assert send_text_now(members, None, TEXT) == []
    assert logged == [("m0", FRAME), ("m1", FRAME)]


def test_the_module_refuses_bad_arguments_and_an_unconfigured_call():
    with pytest.raises(TypeError):
        fanout._fanout.send_to_all((), None, FRAME)  # a list of members is required
    with pytest.raises(TypeError):
        fanout._fanout.send_to_all([], None, TEXT)  # the frame is bytes
