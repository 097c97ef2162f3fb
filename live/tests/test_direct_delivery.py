"""The consumer's direct path for broadcasts (AttendanceConsumer.deliver_now): which messages it takes, and
one frame shared by every local recipient. The path end to end is in test_wire_broadcast.py; in-process
(Channels' communicator sets no extension) every message takes on_group_message, as the other tests show.
"""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from attendance_site.asgi import application
from live.consumers import AttendanceConsumer
from live.hub import get_hub
from live.notify import user_group
from server.daphne_ext import SOCKET_EXTENSION
from tests.support import make_user, token_for


class FakeDirectSocket:
    """What the consumer needs of server.daphne_ext.DirectSocket, recorded."""

    prepared: list[str] = []

    def __init__(self, is_open: bool = True) -> None:
        self.sent: list[Any] = []
        self.is_open = is_open

    @staticmethod
    def prepare(text: str) -> tuple[str, str]:
        FakeDirectSocket.prepared.append(text)
        return ("frame", text)

    def send_prepared(self, frame: Any) -> bool:
        if self.is_open:
            self.sent.append(frame)
        return self.is_open


@pytest.fixture(autouse=True)
def _no_frames_yet() -> None:
    FakeDirectSocket.prepared = []


def consumer(direct: FakeDirectSocket | None = None, accepted: bool = True) -> AttendanceConsumer:
    made = AttendanceConsumer()
    made.direct = direct  # type: ignore[assignment]
    made.accepted = accepted
    return made


def broadcast(text: str = '{"event":"DONE"}', skip: str = "nobody") -> dict[str, Any]:
    return {"kind": "broadcast", "text": text, "skip": skip}


def test_every_local_recipient_gets_the_same_frame_built_once():
    recipients = [consumer(FakeDirectSocket()) for _ in range(3)]
    shared: dict[str, Any] = {}
    assert all(recipient.deliver_now(broadcast("t"), shared) for recipient in recipients)
    assert FakeDirectSocket.prepared == ["t"]
    assert [recipient.direct.sent for recipient in recipients] == [[("frame", "t")]] * 3  # type: ignore[union-attr]
    # The next message gets a frame of its own.
    assert recipients[0].deliver_now(broadcast("u"), {}) and FakeDirectSocket.prepared == ["t", "u"]


def test_the_sender_and_a_closed_socket_are_skipped_as_taken():
    sender, closed = consumer(FakeDirectSocket()), consumer(FakeDirectSocket())
    closed.closed = True
    assert sender.deliver_now(broadcast(skip=sender.member_id), {}) is True
    assert closed.deliver_now(broadcast(), {}) is True
    assert sender.direct.sent == closed.direct.sent == [] and FakeDirectSocket.prepared == []  # type: ignore[union-attr]


@pytest.mark.parametrize("case", ["no extension", "not accepted", "still sending what it held", "a notice"])
def test_what_the_direct_path_leaves_to_on_group_message(case):
    direct = FakeDirectSocket()
    recipient = consumer(None if case == "no extension" else direct, accepted=case != "not accepted")
    if case == "still sending what it held":
        recipient.held = ['{"event":"TODAY_SUMMARY"}']  # the held frames go first, in order
    message = {"kind": "join", "class_id": "c"} if case == "a notice" else broadcast()
    assert recipient.deliver_now(message, {}) is False
    assert direct.sent == []


def test_a_socket_that_closed_under_daphne_leaves_the_frame_to_on_group_message():
    # Not open any more at the protocol: on_group_message's ASGI send, which Daphne drops for a closed socket.
    recipient = consumer(FakeDirectSocket(is_open=False))
    assert recipient.deliver_now(broadcast(), {}) is False


# --- direct_ready: what the native fan-out (server/fanout.py) writes to --------------------------------------------
@pytest.mark.django_db(transaction=True)
async def test_direct_ready_is_the_direct_socket_once_accepted_and_none_once_closed(fresh_live):
    user = await database_sync_to_async(make_user)("student")
    direct = FakeDirectSocket()
    communicator = WebsocketCommunicator(application, f"/ws?token={token_for(user)}")
    communicator.scope["extensions"] = {SOCKET_EXTENSION: direct}  # what our Daphne sets (server/daphne_ext.py)
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    [member] = get_hub().local_members(user_group(user.id))
    assert member.direct_ready is direct and member.accepted
    await communicator.disconnect(timeout=5)
    assert member.direct_ready is None and member.closed
