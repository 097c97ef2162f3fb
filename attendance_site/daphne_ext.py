"""Two WebSocket close behaviours the contract needs and stock Daphne/Autobahn do not give.

- The auth ERROR closes with 1008 (policy violation); Autobahn lets applications use only 1000 and
  3000–4999, so our protocol sends such standard codes as a plain close frame.
- A message over the size limit is answered with close 1009 instead of a dropped TCP connection
  (Autobahn's `failByDrop`), so the client learns why.
"""

from __future__ import annotations

from typing import Any

from daphne import server as daphne_server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

STANDARD_CLOSE_CODES = {1008, 1009, 1011}


class AttendanceWebSocketProtocol(WebSocketProtocol):
    def serverClose(self, code: int | None = None) -> None:  # noqa: N802 (Daphne's name)
        if code in STANDARD_CLOSE_CODES and self.state == self.STATE_OPEN:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            super().serverClose(code)


class AttendanceWebSocketFactory(WebSocketFactory):
    protocol = AttendanceWebSocketProtocol

    def setProtocolOptions(self, **options: Any) -> None:  # noqa: N802 (Autobahn's name)
        super().setProtocolOptions(failByDrop=False, **options)


def install() -> None:
    """Make Daphne's Server build our factory (it looks the name up when it starts)."""
    daphne_server.WebSocketFactory = AttendanceWebSocketFactory
