"""Changing live sessions: start, mark, finish (DONE), and the upkeep's recover and expire.

The session's row (live.models.AttendanceSession) is the only copy of a live session. Every change is one
atomic operation of the database, committed before it is broadcast (live.publisher, after commit):

- SQL, and MongoDB with transactions: DONE is one transaction that first takes the session (a conditional
  UPDATE from live, which locks the row until the commit), then writes its records. A mark waits for that lock
  and then finds the session no longer live; a DONE whose worker dies rolls back by itself.
- MongoDB without transactions (standalone): DONE claims the session (live → persisting, with a token and a
  lease), writes the records, and commits with a conditional update on its token. Recovery (`recover_claims`)
  gives a claim whose lease ran out back to live; the claimer's late commit then matches nothing and it removes
  its records (it is fenced off).
- A mark is a single-document conditional update on MongoDB (both topologies), and a locked read-modify-write
  on SQL; either applies only to a session still live.

Sync functions: the consumer calls them through live.db.db_call.
"""

from __future__ import annotations

import json
import logging
import secrets
from contextlib import AbstractContextManager, nullcontext, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction

from accounts.models import User
from classes import services as classes
from common import messages
from common.errors import NotFound, Unavailable
from common.schemas import iso_z
from live.models import Attendance, AttendanceSession, MarkSource, SessionState, Status
from live.publisher import Origin, broadcast_on_commit
from live.schemas import DonePayload, MarkedPayload
from live.selectors import Session, Summary, check_enrolled, live_cutoff, persisted_summary, statuses

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    """Now, to the millisecond (startedAt and `at` are shown with milliseconds; MongoDB keeps no finer)."""
    now = datetime.now(tz=UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso_now() -> str:
    """Like JavaScript's new Date().toISOString(): UTC, milliseconds, "Z"."""
    return iso_z(utc_now())


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


def claim_lease_seconds() -> float:
    """How long a claimer (no transactions) may take to persist a session before recovery takes it back."""
    return float(settings.LIVE_CLAIM_LEASE_SECONDS)


# --- start ----------------------------------------------------------------------------------------------


def start_session(teacher: User, class_id: str) -> Session:
    """Start the live session of a class the teacher owns, replacing the teacher's live one (if any)."""
    klass = classes.owned_class(class_id, teacher)
    started_at = utc_now()
    for _ in range(5):
        try:
            return _start(teacher, klass.id, started_at)
        except IntegrityError:  # a session of this class started in this very millisecond: the next one
            started_at += timedelta(milliseconds=1)
    return _start(teacher, klass.id, started_at)


def _start(teacher: User, class_id: str, started_at: datetime) -> Session:
    atomic = transaction_if_supported()
    with atomic if atomic is not None else nullcontext():
        live = AttendanceSession.objects.filter(teacher_id=teacher.id, state=SessionState.LIVE)
        live.update(state=SessionState.REPLACED, updated_at=started_at)
        row = AttendanceSession.objects.create(
            klass_id=class_id,
            teacher_id=teacher.id,
            state=SessionState.LIVE,
            marks={},
            started_at=started_at,
            updated_at=started_at,
        )
    return Session.from_row(row)


# --- mark -----------------------------------------------------------------------------------------------


def mark_attendance(
    session: Session, student_id: str, status: str, by: str, origin: Origin | None = None
) -> None:
    """ATTENDANCE_MARKED: record the mark in the session if it is still live, then broadcast it.

    NotFound "Student not found" for a student not enrolled; "No active attendance session" when the session
    ended meanwhile (a DONE won): the mark is then applied nowhere."""
    check_enrolled(session, student_id)
    now = utc_now()
    mark = {"status": str(Status(status)), "at": iso_z(now), "by": by, "source": MarkSource.TEACHER.value}
    if connection.vendor == "mongodb":
        applied = _mark_document(session.id, student_id, mark, now)
    else:
        with transaction.atomic():
            applied = _mark_row(session.id, student_id, mark, now)
            if applied:
                broadcast_on_commit(session.class_id, "ATTENDANCE_MARKED", _marked(student_id, status), origin)
    if not applied:
        raise NotFound(messages.NO_SESSION)
    if connection.vendor == "mongodb":
        broadcast_on_commit(session.class_id, "ATTENDANCE_MARKED", _marked(student_id, status), origin)


def _marked(student_id: str, status: str) -> MarkedPayload:
    return MarkedPayload(studentId=student_id, status=Status(status))


# SQL: one conditional UPDATE that sets the one key in the database (no read of the other marks, whose number
# grows with the class): it locks the row (SQLite: the database) and applies only to a session still live.
_SET_MARK = {
    "sqlite": "json_set(marks, %s, json(%s))",
    "postgresql": "jsonb_set(marks, %s, %s::jsonb)",
}


def _mark_row(session_id: str, student_id: str, mark: dict[str, str], now: datetime) -> bool:
    ops = connection.ops
    set_mark = _SET_MARK.get(connection.vendor)
    if set_mark is None:  # another SQL database: read, change, write, under the row's lock
        live = AttendanceSession.objects.select_for_update().filter(
            pk=session_id, state=SessionState.LIVE, updated_at__gte=live_cutoff(now)
        )
        marks = live.values_list("marks", flat=True).first()
        if marks is None:
            return False
        AttendanceSession.objects.filter(pk=session_id).update(marks={**marks, student_id: mark}, updated_at=now)
        return True
    path: Any = f'$."{student_id}"' if connection.vendor == "sqlite" else [student_id]
    table = ops.quote_name(AttendanceSession._meta.db_table)
    updated = ops.quote_name("updatedAt")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET marks = {set_mark}, {updated} = %s"  # noqa: S608 (names are ours, values bound)
            f" WHERE {ops.quote_name('_id')} = %s AND state = %s AND {updated} >= %s",
            [
                path,
                json.dumps(mark),
                ops.adapt_datetimefield_value(now),
                session_id,
                SessionState.LIVE.value,
                ops.adapt_datetimefield_value(live_cutoff(now)),
            ],
        )
        return bool(cursor.rowcount)


def _mark_document(session_id: str, student_id: str, mark: dict[str, str], now: datetime) -> bool:
    """MongoDB: one single-document conditional update (atomic without a transaction; it waits for, or
    conflicts with, a DONE's transaction holding the document)."""
    collection = connection.get_collection(AttendanceSession._meta.db_table)  # type: ignore[attr-defined]
    result = collection.update_one(
        {"_id": ObjectId(session_id), "state": SessionState.LIVE.value, "updatedAt": {"$gte": live_cutoff(now)}},
        {"$set": {f"marks.{student_id}": mark, "updatedAt": now}},
    )
    return bool(result.matched_count)


# --- DONE -----------------------------------------------------------------------------------------------


def finish_session(session: Session, origin: Origin | None = None) -> Summary:
    """DONE: mark every unmarked enrolled student absent, write one record per enrolled student, end the
    session, broadcast the summary (total = enrolled students). Exactly once: of two DONEs one persists, the
    other gets "No active attendance session".

    Tells the truth: when the commit's reply is lost, the session's state is read again, and a persisted
    session is a success with what was persisted; otherwise the session is live again ("please try again"),
    or, if it could not be put back, kept for recovery."""
    atomic = transaction_if_supported()
    if atomic is None:
        return _finish_fenced(session, origin)
    try:
        with atomic:
            summary = _take_and_write(session)
            broadcast_on_commit(session.class_id, "DONE", DonePayload(**summary), origin)
    except DatabaseError:
        logger.exception("Persisting the session %s of class %s failed", session.id, session.class_id)
        return _persisted_after_all(session, origin)
    return summary


def _take_and_write(session: Session) -> Summary:
    """In a transaction: the conditional update takes (and locks) the session first, so that the marks read
    next are final; then the records."""
    now = utc_now()
    taken = AttendanceSession.objects.filter(
        pk=session.id, state=SessionState.LIVE, updated_at__gte=live_cutoff(now)
    ).update(state=SessionState.PERSISTED, ended_at=now, updated_at=now)
    if not taken:
        raise NotFound(messages.NO_SESSION)
    row = AttendanceSession.objects.get(pk=session.id)
    records, summary = _records(row)
    Attendance.objects.bulk_create(records, batch_size=5000)
    return summary


def _records(row: AttendanceSession) -> tuple[list[Attendance], Summary]:
    marks = statuses(row.marks)
    enrolled = classes.student_ids(row.klass_id)
    records = [
        Attendance(
            session_id=row.id,
            klass_id=row.klass_id,
            student_id=sid,
            status=marks.get(sid, Status.ABSENT),
            started_at=row.started_at,
        )
        for sid in enrolled
    ]
    present = sum(1 for record in records if record.status == Status.PRESENT)
    return records, {"present": present, "absent": len(records) - present, "total": len(records)}


def _persisted_after_all(session: Session, origin: Origin | None) -> Summary:
    """A DONE that met a database error: persisted after all (the reply was lost), or failed."""
    try:
        summary = persisted_summary(session.id)
    except DatabaseError:
        summary = None
    if summary is None:
        raise Unavailable(messages.PERSIST_FAILED)
    broadcast_on_commit(session.class_id, "DONE", DonePayload(**summary), origin)
    return summary


def _finish_fenced(session: Session, origin: Origin | None) -> Summary:
    """DONE without transactions (standalone MongoDB): claim, write, commit on the claim's token."""
    now = utc_now()
    token = secrets.token_hex(8)
    claimed = AttendanceSession.objects.filter(
        pk=session.id, state=SessionState.LIVE, updated_at__gte=live_cutoff(now)
    ).update(state=SessionState.PERSISTING, claim=token, claim_until=now + timedelta(seconds=claim_lease_seconds()))
    if not claimed:
        raise NotFound(messages.NO_SESSION)
    records: list[Attendance] = []
    try:
        row = AttendanceSession.objects.get(pk=session.id)
        # Records left by an attempt that recovery took back (it removes them too; a late insert may follow).
        Attendance.objects.filter(session_id=session.id).delete()
        records, summary = _records(row)
        Attendance.objects.bulk_create(records, batch_size=5000)
        committed = _commit_claim(session.id, token)
    except DatabaseError:
        logger.exception("Persisting the session %s of class %s failed", session.id, session.class_id)
        with suppress(DatabaseError):
            if (summary_after_all := persisted_summary(session.id)) is not None:
                broadcast_on_commit(session.class_id, "DONE", DonePayload(**summary_after_all), origin)
                return summary_after_all
        _remove(records)
        if _give_back(session.id, token):
            raise Unavailable(messages.PERSIST_FAILED) from None
        raise Unavailable(messages.PERSIST_FAILED_KEPT) from None
    if not committed:
        # Recovery took the session back after the lease ran out: this late commit is fenced off.
        logger.warning("The claim on session %s expired before its commit; its records are removed", session.id)
        _remove(records)
        raise Unavailable(messages.PERSIST_FAILED)
    broadcast_on_commit(session.class_id, "DONE", DonePayload(**summary), origin)
    return summary


def _commit_claim(session_id: str, token: str) -> bool:
    """The commit point without a transaction: one single-document update, only while the claim is ours."""
    return bool(
        AttendanceSession.objects.filter(pk=session_id, state=SessionState.PERSISTING, claim=token).update(
            state=SessionState.PERSISTED, ended_at=utc_now(), updated_at=utc_now(), claim=None, claim_until=None
        )
    )


def _give_back(session_id: str, token: str) -> bool:
    """Make a claimed session live again (its DONE failed); False if that failed too (recovery will)."""
    try:
        return bool(
            AttendanceSession.objects.filter(pk=session_id, state=SessionState.PERSISTING, claim=token).update(
                state=SessionState.LIVE, claim=None, claim_until=None, updated_at=utc_now()
            )
        )
    except DatabaseError:
        logger.exception("Putting back the session %s failed; recovery will", session_id)
        return False


def _remove(records: list[Attendance]) -> None:
    if records:
        with suppress(DatabaseError):
            Attendance.objects.filter(pk__in=[record.pk for record in records]).delete()


# --- upkeep ---------------------------------------------------------------------------------------------


def recover_claims(limit: int = 100) -> int:
    """Claims whose lease ran out (their worker died or stalled mid-DONE, without transactions) go back to live,
    conditional on their token, and their partial records are removed. Returns how many were recovered."""
    now = utc_now()
    stale = AttendanceSession.objects.filter(state=SessionState.PERSISTING, claim_until__lt=now)
    recovered = 0
    for session_id, token in list(stale.values_list("id", "claim")[:limit]):
        if token is not None and _give_back(session_id, token):
            Attendance.objects.filter(session_id=session_id).delete()
            logger.warning("Recovered: the claimed session %s is live again", session_id)
            recovered += 1
    return recovered


def expire_sessions() -> int:
    """Live sessions without a change for SESSION_TTL_SECONDS become expired (readers already ignore them)."""
    stale = AttendanceSession.objects.filter(state=SessionState.LIVE, updated_at__lt=live_cutoff())
    return stale.update(state=SessionState.EXPIRED)
