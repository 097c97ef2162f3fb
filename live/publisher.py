"""The one way live events reach sockets: published by live.commands once their change has committed.

A broadcast caused by a socket's event (its `origin`) reaches that socket first, then every other participant of
the class, in every process (live.hub). HTTP, the admin and a socket take the same path: the commit's callback
hands the broadcast to the calling socket's event loop when it runs on a database thread (live.db.db_call), or
publishes it at once from a request's thread, as membership notices are (live.notify).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from asgiref.sync import async_to_sync
from django.db import transaction

from common.schemas import ResponseModel
from live.db import defer_to_caller
from live.hub import publish
from live.notify import class_group
from live.schemas import encode

logger = logging.getLogger(__name__)


class Origin(Protocol):
    """The socket whose event caused a broadcast (live.consumers.AttendanceConsumer)."""

    member_id: str

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None: ...


def broadcast_on_commit(class_id: str, event: str, payload: ResponseModel, origin: Origin | None = None) -> None:
    """Broadcast `event` to the class's participants once the current transaction commits (at once outside one);
    never what was rolled back."""
    text = encode(event, payload)

    async def deliver() -> None:
        await send_broadcast(class_id, text, origin)

    _after_commit(deliver, f"{event} to class {class_id}")


def notify_on_commit(group: str, message: dict[str, Any]) -> None:
    """Send a notice (not a client frame: the sockets act on it, live.consumers `on_notice`) to a group's sockets
    in every process once the current transaction commits, by the same path as broadcasts."""

    async def deliver() -> None:
        try:
            await publish(group, message)
        except Exception:
            logger.exception("Could not notify %s", group)

    _after_commit(deliver, f"a {message.get('kind')} notice to {group}")


def _after_commit(deliver: Any, what: str) -> None:
    """Run `deliver` once the transaction commits: on the calling socket's loop from a database thread
    (live.db.defer_to_caller), else at once from this thread."""

    def on_commit() -> None:
        if defer_to_caller(deliver):
            return
        try:
            async_to_sync(deliver)()
        except Exception:
            logger.exception("Could not send %s", what)

    transaction.on_commit(on_commit)


async def broadcast(class_id: str, event: str, payload: ResponseModel, origin: Origin | None = None) -> None:
    """Broadcast now: for events that change nothing (TODAY_SUMMARY)."""
    await send_broadcast(class_id, encode(event, payload), origin)


async def send_broadcast(class_id: str, text: str, origin: Origin | None = None) -> None:
    """Serialised once: `origin` first, then every other participant of the class."""
    message: dict[str, Any] = {"kind": "broadcast", "text": text, "skip": None}
    if origin is not None:
        message["skip"] = origin.member_id
        try:
            await origin.send(text_data=text)
        except Exception:  # the socket went away: the others still get it
            logger.warning("Sending a broadcast to its own socket failed", exc_info=True)
    try:
        await publish(class_group(class_id), message)
    except Exception:
        logger.exception("Could not broadcast to class %s", class_id)
