"""Channel-layer group names and the messages the HTTP side sends to live sockets."""

from __future__ import annotations

from asgiref.sync import async_to_sync

from live.hub import publish


def user_group(user_id: str) -> str:
    """Every open socket of one user."""
    return f"user.{user_id}"


def class_group(class_id: str) -> str:
    """Every open socket of a class's participants: its teacher and its enrolled students."""
    return f"class.{class_id}"


def notify_membership(user_id: str, class_id: str) -> None:
    """Tell a user's open sockets that they now take part in a class (created it, or were enrolled),
    so they receive its broadcasts without reconnecting."""
    async_to_sync(publish)(user_group(user_id), {"kind": "join", "class_id": class_id})
