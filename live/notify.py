"""Channel-layer group names, and the notices that keep open sockets in step with the database.

Notices are sent from model signals after the transaction commits, so that every write path — the API, the
admin, a shell — reaches open sockets, and a notice never announces what was rolled back. A notice that
cannot be sent (the channel layer is down) is logged, never turned into a failed write: open sockets also
re-check their account periodically (live.consumers).
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from live.hub import publish

logger = logging.getLogger(__name__)


def user_group(user_id: str) -> str:
    """Every open socket of one user."""
    return f"user.{user_id}"


def class_group(class_id: str) -> str:
    """Every open socket of a class's participants: its teacher and its enrolled students."""
    return f"class.{class_id}"


def notify(group: str, message: dict[str, Any]) -> None:
    """Send `message` to the group's sockets once the current transaction commits (at once outside one)."""

    def send() -> None:
        try:
            async_to_sync(publish)(group, message)
        except Exception:
            logger.exception("Could not notify %s of %s", group, message.get("kind"))

    transaction.on_commit(send)


def joined(user_id: str, class_id: str) -> None:
    """The user now takes part in the class (created it, or was enrolled): its broadcasts reach them."""
    notify(user_group(user_id), {"kind": "join", "class_id": class_id})


def left(user_id: str, class_id: str) -> None:
    """The user no longer takes part in the class: its broadcasts stop reaching them."""
    notify(user_group(user_id), {"kind": "leave", "class_id": class_id})


def revoked(user_id: str) -> None:
    """The user was deleted or deactivated, or their role changed: their open sockets close."""
    notify(user_group(user_id), {"kind": "revoke"})


# --- model signals (connected by LiveConfig.ready) ------------------------------------------------------------


def _class_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if created:
        joined(instance.teacher_id, instance.id)


def _enrollment_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if created:
        joined(instance.student_id, instance.klass_id)


def _enrollment_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    left(instance.student_id, instance.klass_id)


def _class_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    left(instance.teacher_id, instance.id)


def _user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    # A role change too: a socket acts with the role it connected with (a teacher turned student must not
    # keep marking; reconnecting gives the new role).
    update_fields = kwargs.get("update_fields")
    role_saved = update_fields is None or "role" in update_fields
    if not created and (not instance.is_active or (role_saved and instance.role_changed)):
        revoked(instance.id)


def _user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    revoked(instance.id)


def connect_signals() -> None:
    from accounts.models import User
    from classes.models import Class, Enrollment

    post_save.connect(_class_saved, sender=Class, dispatch_uid="live.class_saved")
    post_delete.connect(_class_deleted, sender=Class, dispatch_uid="live.class_deleted")
    post_save.connect(_enrollment_saved, sender=Enrollment, dispatch_uid="live.enrollment_saved")
    post_delete.connect(_enrollment_deleted, sender=Enrollment, dispatch_uid="live.enrollment_deleted")
    post_save.connect(_user_saved, sender=User, dispatch_uid="live.user_saved")
    post_delete.connect(_user_deleted, sender=User, dispatch_uid="live.user_deleted")
