"""Live attendance rules, shared by the HTTP views and the WebSocket consumer.

Sessions live in the SessionStore; persisted records in the database. Functions that touch the
database are sync (the consumer calls them through live.db.db_call); session functions are async
because the store is.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractContextManager, nullcontext, suppress
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import async_to_sync
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.auth import active_users
from accounts.models import Role, User
from classes import services as classes
from classes.models import Class, Enrollment
from common import messages
from common.errors import NotFound, Unavailable
from common.fields import is_object_id
from common.schemas import iso_z
from live.db import db_call
from live.models import Attendance, AttendanceSession, Status
from live.schemas import PersistedStatus
from live.store import Session, Summary, get_session_store

logger = logging.getLogger(__name__)



def iso_now() -> str:
    """Like JavaScript's new Date().toISOString(): UTC, milliseconds, "Z"."""
    return iso_z(datetime.now(tz=UTC))


# --- HTTP ------------------------------------------------------------------------------------------


def start_session(teacher: User, class_id: str) -> Session:
    """Start (or restart, with empty marks) the attendance session of a class the teacher owns."""
    klass = classes.owned_class(class_id, teacher)
    session = Session(teacher_id=teacher.id, class_id=klass.id, started_at=iso_now())
    async_to_sync(get_session_store().start)(session)
    return session


def my_persisted_status(class_id: str, student: User) -> PersistedStatus:
    """The student's status in the class's most recent persisted session, or None."""
    klass = classes.enrolled_class(class_id, student)
    committed = AttendanceSession.objects.filter(
        klass_id=OuterRef("klass_id"), started_at=OuterRef("started_at"), committed=True
    )
    status = (
        Attendance.objects.filter(klass_id=klass.id, student_id=student.id)
        .filter(Exists(committed))
        .order_by("-started_at")
        .values_list("status", flat=True)
        .first()
    )
    return PersistedStatus(classId=klass.id, status=None if status is None else Status(status))


# --- WebSocket ---------------------------------------------------------------------------------------


async def active_session(teacher_id: str) -> Session:
    session = await get_session_store().for_teacher(teacher_id)
    if session is None:
        raise NotFound(messages.NO_SESSION)
    return session


def check_enrolled(session: Session, student_id: str) -> None:
    if not (is_object_id(student_id) and classes.is_enrolled(session.class_id, student_id)):
        raise NotFound(messages.STUDENT_NOT_FOUND)


async def mark_attendance(session: Session, student_id: str, status: str) -> Session:
    updated = await get_session_store().mark(session, student_id, status)
    if updated is None:  # ended or replaced while the enrolment was being checked
        raise NotFound(messages.NO_SESSION)
    return updated


def today_summary(session: Session) -> Summary:
    """TODAY_SUMMARY: the marks of the students enrolled now, those DONE would persist (one query)."""
    return session.counts(set(classes.student_ids(session.class_id)))


async def student_sessions(class_ids: set[str]) -> list[Session]:
    """Live sessions of the classes a student is enrolled in, most recent first."""
    return await get_session_store().for_classes(class_ids) if class_ids else []


def my_live_status(sessions: list[Session], student_id: str, class_id: str | None) -> str:
    if class_id is not None:
        sessions = [s for s in sessions if s.class_id == class_id]
    if not sessions:
        raise NotFound(messages.NO_SESSION)
    return sessions[0].attendance.get(student_id, messages.NOT_YET_UPDATED)


def transaction_if_supported() -> AbstractContextManager[Any] | None:
    """A transaction, where the database has them: SQL, and MongoDB as a replica set or sharded cluster.

    On MongoDB Django's atomic() is a no-op; the backend's own atomic() runs a real transaction, and the
    backend's `_supports_transactions` flag asks the server whether it can. A standalone MongoDB cannot."""
    if connection.vendor == "mongodb":
        if not getattr(connection.features, "_supports_transactions", False):
            return None
        from django_mongodb_backend import transaction as mongodb_transaction

        atomic: AbstractContextManager[Any] = mongodb_transaction.atomic()
        return atomic
    return transaction.atomic() if connection.features.supports_transactions else None


def persist_session(session: Session) -> Summary:
    """Mark every unmarked enrolled student absent and write one record per enrolled student, all or
    nothing. Returns the final summary (total = enrolled students).

    All or nothing for readers on every database: records count only once their AttendanceSession is
    committed, and that is the last write, a single-document update. Where there is a transaction the
    whole write is also rolled back on failure; without one (standalone MongoDB) a failed insert removes
    what it inserted, and a retry clears whatever could not be removed.

    Idempotent: a session that is already persisted (an earlier attempt committed, but its reply was lost)
    is not written again; the summary of what was persisted is returned."""
    started_at = parse_datetime(session.started_at)
    assert started_at is not None, session.started_at
    persisted = persisted_summary(session.class_id, started_at)
    if persisted is not None:
        return persisted
    enrolled = classes.student_ids(session.class_id)
    statuses = {sid: session.attendance.get(sid, Status.ABSENT) for sid in enrolled}
    records = [
        Attendance(klass_id=session.class_id, student_id=sid, status=status, started_at=started_at)
        for sid, status in statuses.items()
    ]
    atomic = transaction_if_supported()
    with atomic if atomic is not None else nullcontext():
        _write_session(session.class_id, started_at, records, undo_on_failure=atomic is None)
    present = sum(1 for status in statuses.values() if status == Status.PRESENT)
    return {"present": present, "absent": len(statuses) - present, "total": len(statuses)}


def persisted_summary(class_id: str, started_at: datetime) -> Summary | None:
    """The summary of a committed session, from its records; None if the session is not persisted."""
    if not AttendanceSession.objects.filter(klass_id=class_id, started_at=started_at, committed=True).exists():
        return None
    counts = dict(
        Attendance.objects.filter(klass_id=class_id, started_at=started_at)
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    present, absent = counts.get(Status.PRESENT, 0), counts.get(Status.ABSENT, 0)
    return {"present": present, "absent": absent, "total": present + absent}


def _write_session(class_id: str, started_at: datetime, records: list[Attendance], *, undo_on_failure: bool) -> None:
    marker = AttendanceSession.objects.filter(klass_id=class_id, started_at=started_at).first()
    if marker is None:
        # Unique per (class, startedAt): of two writers racing for one session, the second fails here.
        marker = AttendanceSession.objects.create(klass_id=class_id, started_at=started_at)
    elif marker.committed:
        raise IntegrityError(f"the session of class {class_id} started at {started_at} is already persisted")
    else:
        # An earlier attempt failed before committing (possible only without a transaction): its records
        # never counted. Clear them, so that one_record_per_session lets this attempt write its own.
        Attendance.objects.filter(klass_id=class_id, started_at=started_at).delete()
    try:
        Attendance.objects.bulk_create(records, batch_size=5000)
    except DatabaseError:
        if undo_on_failure:  # no transaction to roll back: remove what this attempt inserted, if possible
            with suppress(DatabaseError):
                Attendance.objects.filter(pk__in=[record.pk for record in records]).delete()
        raise
    # The commit point: one single-document write makes the whole session count, and says when it ended.
    AttendanceSession.objects.filter(pk=marker.pk).update(committed=True, ended_at=timezone.now())


# A parked session (its DONE failed and it could not be put back) is retried this often by recovery.
PARKED_RETRY_SECONDS = 15.0


async def finish_session(teacher_id: str) -> tuple[Session, Summary]:
    """DONE: claim the session (one caller wins), persist it, or put it back if persisting fails.

    Tells the truth: success only once the records are committed; "please try again" only when the session
    is active again; otherwise (a newer session started meanwhile, or the store failed) that the marks are
    kept for recovery (`recover_claims`)."""
    store = get_session_store()
    session = await store.claim(teacher_id)
    if session is None:
        raise NotFound(messages.NO_SESSION)
    # Shielded: a socket closing mid-write must not leave the claimed session neither persisted nor put back.
    return session, await asyncio.shield(_persist_claimed(session))


async def _persist_claimed(session: Session) -> Summary:
    store = get_session_store()
    try:
        summary = await db_call(persist_session)(session)
    except Exception as error:
        logger.exception("Persisting the session of class %s failed", session.class_id)
        try:
            restored = await store.restore(session)
            if not restored:
                await store.park(session, PARKED_RETRY_SECONDS)
        except Exception:
            # The store failed too: the claimed copy stays, and its lease running out hands it to recovery.
            logger.exception("Putting back the session of class %s failed; recovery will", session.class_id)
            restored = False
        if not restored:
            raise Unavailable(messages.PERSIST_FAILED_KEPT) from None
        if isinstance(error, DatabaseError):
            raise Unavailable(messages.PERSIST_FAILED) from None
        raise  # a bug, not the database: the marks are back, the socket reports an internal error
    await _release_quietly(session)
    return summary


async def _release_quietly(session: Session) -> None:
    try:
        await get_session_store().release(session)
    except Exception:
        # Persisted: a claim left behind is released by recovery, which finds the session committed.
        logger.warning("Releasing the claim of class %s failed; recovery will", session.class_id, exc_info=True)


def is_persisted(session: Session) -> bool:
    started_at = parse_datetime(session.started_at)
    assert started_at is not None, session.started_at
    return AttendanceSession.objects.filter(klass_id=session.class_id, started_at=started_at, committed=True).exists()


async def recover_claims() -> int:
    """Settle claims whose claimer went away (docs/production.md): a session that was persisted is released
    (its DONE happened); one whose worker died before committing becomes active again (or, if the teacher
    has started a newer one, is parked); a parked one is persisted. Returns how many were settled."""
    store = get_session_store()
    settled = 0
    for session in await store.take_stale_claims():
        try:
            if await db_call(is_persisted)(session):
                await store.release(session)
            elif session.parked:
                await db_call(persist_session)(session)
                await store.release(session)
                logger.warning("Recovered: persisted the parked session of class %s", session.class_id)
            elif await store.restore(session):
                logger.warning("Recovered: the claimed session of class %s is active again", session.class_id)
            else:
                await store.park(session, 0)
                continue  # persisted on the next round
            settled += 1
        except Exception:
            logger.exception("Recovering the session of class %s failed; retried later", session.class_id)
            with suppress(Exception):
                await store.park(session, PARKED_RETRY_SECONDS)
    return settled


Participant = tuple[User, set[str]]


def connect_participants(claims: list[dict[str, Any]]) -> list[Participant | None]:
    """Each connecting socket's user and the classes it takes part in (None: the token's user is gone), for a
    burst of connects at once (live.participants): three queries, whatever their number — the active users,
    the classes the teachers among them teach, the students' enrolments."""
    users = {user.id: user for user in active_users(claims)}
    classes_of: dict[str, set[str]] = {user_id: set() for user_id in users}
    teachers = [pk for pk, user in users.items() if user.role == Role.TEACHER]
    students = [pk for pk, user in users.items() if user.role != Role.TEACHER]
    if teachers:
        for teacher_id, class_id in Class.objects.filter(teacher_id__in=teachers).values_list("teacher_id", "id"):
            classes_of[teacher_id].add(class_id)
    if students:
        for student_id, class_id in Enrollment.objects.filter(student_id__in=students).values_list(
            "student_id", "klass_id"
        ):
            classes_of[student_id].add(class_id)
    # Each socket gets its own set: a consumer changes its class ids as notices arrive.
    found: list[Participant | None] = []
    for c in claims:
        user = users.get(c["userId"])
        found.append(None if user is None else (user, set(classes_of[user.id])))
    return found
