"""Live attendance rules, shared by the HTTP views and the WebSocket consumer.

Sessions live in the SessionStore; persisted records in the database. Functions that touch the
database are sync (the consumer calls them through database_sync_to_async); session functions are
async because the store is.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import DatabaseError, transaction
from django.utils.dateparse import parse_datetime

from accounts.auth import user_from_token
from accounts.models import User
from attendance_site.api import ApiError
from attendance_site.fields import is_object_id
from classes import services as classes
from classes.models import Class
from live.models import Attendance, Status
from live.store import Session, get_session_store

logger = logging.getLogger(__name__)

NO_SESSION = "No active attendance session"
PERSIST_FAILED = "Could not persist attendance, please try again"
NOT_YET_UPDATED = "not yet updated"


def iso_now() -> str:
    """Like JavaScript's new Date().toISOString(): UTC, milliseconds, "Z"."""
    return datetime.now(tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- HTTP ------------------------------------------------------------------------------------------


def start_session(teacher: User, class_id: str) -> Session:
    """Start (or restart, with empty marks) the attendance session of a class the teacher owns."""
    klass = classes.owned_class(class_id, teacher)
    session = Session(teacher_id=teacher.id, class_id=klass.id, started_at=iso_now())
    async_to_sync(get_session_store().start)(session)
    return session


def my_persisted_status(class_id: str, student: User) -> dict[str, str | None]:
    """The student's status in the class's most recent persisted session, or None."""
    klass = classes.get_class(class_id)
    if not classes.is_enrolled(klass.id, student.id):
        raise ApiError(403, classes.NOT_ENROLLED)
    status = (
        Attendance.objects.filter(klass_id=klass.id, student_id=student.id)
        .order_by("-started_at")
        .values_list("status", flat=True)
        .first()
    )
    return {"classId": klass.id, "status": status}


# --- WebSocket ---------------------------------------------------------------------------------------


async def active_session(teacher_id: str) -> Session:
    session = await get_session_store().for_teacher(teacher_id)
    if session is None:
        raise ApiError(404, NO_SESSION)
    return session


def check_enrolled(session: Session, student_id: str) -> None:
    if not (is_object_id(student_id) and classes.is_enrolled(session.class_id, student_id)):
        raise ApiError(404, classes.STUDENT_NOT_FOUND)


async def mark_attendance(session: Session, student_id: str, status: str) -> Session:
    updated = await get_session_store().mark(session, student_id, status)
    if updated is None:  # ended or replaced while the enrolment was being checked
        raise ApiError(404, NO_SESSION)
    return updated


async def student_sessions(class_ids: set[str]) -> list[Session]:
    """Live sessions of the classes a student is enrolled in, most recent first."""
    return await get_session_store().for_classes(class_ids) if class_ids else []


def my_live_status(sessions: list[Session], student_id: str, class_id: str | None) -> str:
    if class_id is not None:
        sessions = [s for s in sessions if s.class_id == class_id]
    if not sessions:
        raise ApiError(404, NO_SESSION)
    return sessions[0].attendance.get(student_id, NOT_YET_UPDATED)


def persist_session(session: Session) -> dict[str, int]:
    """Mark every unmarked enrolled student absent and write one record per enrolled student, all or
    nothing. Returns the final summary (total = enrolled students)."""
    enrolled = classes.student_ids(session.class_id)
    started_at = parse_datetime(session.started_at)
    statuses = {sid: session.attendance.get(sid, Status.ABSENT) for sid in enrolled}
    records = [
        Attendance(klass_id=session.class_id, student_id=sid, status=status, started_at=started_at)
        for sid, status in statuses.items()
    ]
    with transaction.atomic():
        Attendance.objects.bulk_create(records, batch_size=5000)
    present = sum(1 for status in statuses.values() if status == Status.PRESENT)
    return {"present": present, "absent": len(statuses) - present, "total": len(statuses)}


async def finish_session(teacher_id: str) -> tuple[Session, dict[str, int]]:
    """DONE: claim the session (one caller wins), persist it, or put it back if persisting fails."""
    store = get_session_store()
    session = await store.claim(teacher_id)
    if session is None:
        raise ApiError(404, NO_SESSION)
    try:
        return session, await database_sync_to_async(persist_session)(session)
    except DatabaseError:
        logger.exception("Persisting session of class %s failed; session kept", session.class_id)
        await store.restore(session)
        raise ApiError(500, PERSIST_FAILED) from None


def class_ids_of(user: User) -> set[str]:
    """Classes whose broadcasts a user receives: those taught, or those enrolled in."""
    if user.role == "teacher":
        return set(Class.objects.filter(teacher_id=user.id).values_list("id", flat=True))
    return set(user.enrollments.values_list("klass_id", flat=True))


def connect_participant(token: str | None) -> tuple[User, set[str]] | None:
    """A socket's user and the classes it takes part in, or None for a bad token — one thread hop."""
    user = user_from_token(token)
    return None if user is None else (user, class_ids_of(user))
