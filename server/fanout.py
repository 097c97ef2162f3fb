"""A broadcast written to every local recipient in one native call (server/fanout.c, built by server.build_native).

A broadcast to N sockets of this process went through five Python functions per recipient (the hub's loop, the
consumer's deliver_now, DirectSocket.send_prepared, FastWebSocketProtocol.send_now, server.write_now): about
half the interpreter's time in a round at N = 1,000 (docs/benchmark.md). `send_text_now` makes the same checks
and the same send() for every recipient in C, with the GIL released for the sends, and hands back the
recipients that are not the plain case, for the caller's usual path to decide exactly as before:

- a member is written to here only when its `direct_ready` is a DirectSocket (the consumer sets it once it has
  accepted and sent what it held, and clears it when it closes), its protocol is open, not muted, with no
  compression and nothing in Autobahn's queue, and its transport is a plain TCP connection with nothing buffered
  and no back-pressure (server.write_now.can_write_now);
- the member whose id is the broadcast's `skip` gets nothing; every other member comes back, in order;
- what a send did not take (a partial write, "try again", or an error such as a reset connection) is handed to
  `transport.write`, which sends it in order or meets the error and closes the connection, as Twisted does.

It reads Twisted's and Autobahn's private attributes, so server.gate installs it (`NativeFanOut.on`) only on
the versions it was written for, only when the module was built, and never with LIVE_FAST_PATH=0.
"""

from __future__ import annotations

import logging
from typing import ClassVar, TypeVar

from autobahn.websocket.protocol import WebSocketProtocol
from twisted.internet import tcp

from server.daphne_ext import DirectSocket, FastSockets, FastWebSocketProtocol
from server.gate import DidNotEnable, Extension, Patches
from server.write_now import CONNECTION_ATTRIBUTES, WriteNow, looked_at_connection

try:
    from server import _fanout  # type: ignore[attr-defined]
except ImportError:  # not built (no compiler): the gate leaves the native fan-out out
    _fanout = None

logger = logging.getLogger(__name__)
M = TypeVar("M")

# The classes server/fanout.c takes, exactly (anything else is handed back): the connections Daphne's endpoints
# make, FastWebSocketProtocol, DirectSocket; and what it reads of the protocol from its own __dict__ (of a
# transport: write-now's CONNECTION_ATTRIBUTES).
TRANSPORT_TYPES = (tcp.Server, tcp.Connection)
PROTOCOL_ATTRIBUTES = ("state", "muted", "_perMessageCompress", "transport", "trafficStats", "factory", "logOctets")


def send_text_now(members: list[M], skip: str | None, text: str) -> list[M]:
    """Write the text frame of `text` now to each of `members` whose socket takes it (not to the one whose
    member_id is `skip`); the members left for the caller's usual path, in their order."""
    frame = DirectSocket.prepare(text).payloadHybi
    left, unfinished = _fanout.send_to_all(members, skip, frame)
    for transport, sent in unfinished:
        try:
            transport.write(frame[sent:])
        except Exception:  # one broken connection must not keep the rest of a frame from the others
            logger.exception("Handing the rest of a broadcast frame to Twisted failed")
    return left  # type: ignore[no-any-return]


class NativeFanOut(Extension):
    """The live hub writes broadcasts through `send_text_now` (`on`)."""

    name = "native fan-out"
    versions = {"twisted": "26.10.0", "autobahn": "26.11.1"}
    fast_path = True
    requires = (FastSockets.name, WriteNow.name)  # DirectSocket and the checks of write-now, made in C
    on: ClassVar[bool] = False

    @classmethod
    def missing(cls) -> list[str]:
        if _fanout is None:
            return ["server._fanout (not built: python -m server.build_native)"]
        # server/fanout.c reads these from each object's own __dict__ before asking getattr: the same values
        # only while no class on the way makes one of them a data descriptor (which getattr would ask first).
        missing = [f"{name} (a data descriptor: read from __dict__ by server/fanout.c)"
                   for owner, names in ((FastWebSocketProtocol, PROTOCOL_ATTRIBUTES),
                                        *((transport, CONNECTION_ATTRIBUTES) for transport in TRANSPORT_TYPES))
                   for name in names if _data_descriptor(owner, name)]
        if not isinstance(getattr(WebSocketProtocol, "STATE_OPEN", None), int):
            missing.append("autobahn.websocket.protocol.WebSocketProtocol.STATE_OPEN (an int)")
        with looked_at_connection() as connection:
            if not isinstance(connection.dataBuffer, bytes) or not isinstance(connection.offset, int):
                missing.append("twisted.internet.tcp.Connection().dataBuffer (bytes), .offset (int)")
            if not isinstance(connection._tempDataBuffer, list):
                missing.append("twisted.internet.tcp.Connection()._tempDataBuffer (a list)")
        return missing

    @classmethod
    def setup_once(cls, patches: Patches) -> None:
        if _fanout is None:
            raise DidNotEnable("server._fanout is not built")
        try:
            _fanout.configure(TRANSPORT_TYPES, FastWebSocketProtocol, DirectSocket, WebSocketProtocol.STATE_OPEN)
        except (TypeError, AttributeError) as error:  # a module of another source; DirectSocket without its slot
            raise DidNotEnable(f"server._fanout refused its configuration ({error})") from error
        patches.set(cls, "on", True)


def _data_descriptor(owner: type, name: str) -> bool:
    for klass in owner.__mro__:
        if name in vars(klass):
            attribute = type(vars(klass)[name])
            return hasattr(attribute, "__set__") or hasattr(attribute, "__delete__")
    return False
