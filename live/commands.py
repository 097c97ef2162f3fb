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
- A mark or a clear is one conditional UPDATE on SQL that changes the student's key with the database's JSON
  functions (SQLite json_set/json_remove, PostgreSQL jsonb_set/-), and a single-document conditional update on
  MongoDB (both topologies); either applies only to a session still live. MARK_ALL fills only the blanks: on SQL
  in a transaction that locks the row before reading its marks, on MongoDB in one update pipeline whose
  $mergeObjects lets the marks already made win.
- Each change appends to the session's change log (live.models.AttendanceChange) in the same transaction where
  there is one; on standalone MongoDB right after the change (docs/choices.md).

Sync functions: the consumer calls them through live.db.db_call.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bson import ObjectId
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from accounts.models import User
from classes import services as classes
from common import messages
from common.errors import NotFound, Unavailable
from common.fields import is_object_id
from common.schemas import iso_z
from live import history
from live.models import Attendance, AttendanceChange, AttendanceSession, MarkSource, SessionState, Status
from live.publisher import Origin, broadcast_on_commit
from live.schemas import ClearedPayload, DonePayload, MarkAllPayload, MarkedPayload, SessionRecord
from live.selectors import Session, Summary, check_enrolled, count_statuses, live_cutoff, persisted_summary

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


# --- mark, mark all, clear ------------------------------------------------------------------------------


def _log(changes: list[AttendanceChange]) -> None:
    """Append to the session's change log (in the change's own transaction where there is one)."""
    if changes:
        AttendanceChange.objects.bulk_create(changes, batch_size=5000)


def _change(session_id: str, student_id: str, mark: dict[str, Any] | None, now: datetime, by: str,
            source: str = MarkSource.TEACHER.value) -> AttendanceChange:
    """The change log's entry: `mark` None for a clear."""
    return AttendanceChange(
        session_id=session_id,
        student_id=student_id,
        status=None if mark is None else mark["status"],
        remark=None if mark is None else mark.get("remark"),
        at=now,
        by=by,
        source=source,
    )


T = TypeVar("T")
_TRANSIENT_RETRIES = 8
# A DONE that conflicts with another transaction waits for it: up to about 15 s in all (a DONE of 1,000 takes <1 s).
_DONE_RETRIES = 20


def _atomically(change: Callable[[], T]) -> T:
    """A change and its log entry in one transaction where the database has them; on standalone MongoDB the
    log is written right after the change (docs/choices.md: the gap).

    MongoDB fails a transaction's write that conflicts with another's at once (WriteConflict, labelled
    TransientTransactionError) instead of waiting as SQL does: such a transaction is run again."""
    if connection.vendor != "mongodb":
        with transaction.atomic():
            return change()
    for attempt in range(_TRANSIENT_RETRIES):
        atomic = transaction_if_supported()
        try:
            with atomic if atomic is not None else nullcontext():
                return change()
        except Exception as error:
            if attempt + 1 == _TRANSIENT_RETRIES or not _transient(error):
                raise
            time.sleep(random.uniform(0.001, 0.005) * (attempt + 1))  # noqa: S311 (jitter, not security)
    raise AssertionError("unreachable")


def _transient(error: BaseException | None) -> bool:
    """A MongoDB error worth retrying the transaction for (itself, or the driver's error it wraps)."""
    while error is not None:
        if isinstance(error, PyMongoError) and error.has_error_label("TransientTransactionError"):
            return True
        error = error.__cause__
    return False


def mark_attendance(
    session: Session,
    student_id: str,
    status: str,
    by: str,
    origin: Origin | None = None,
    remark: str | None = None,
) -> None:
    """ATTENDANCE_MARKED: record the mark in the session if it is still live, log it, then broadcast it
    (without the remark: remarks are never broadcast).

    `remark` None keeps the current remark, "" clears it. NotFound "Student not found" for a student not
    enrolled; "No active attendance session" when the session ended meanwhile (a DONE won): the mark is then
    applied nowhere."""
    check_enrolled(session, student_id)
    now = utc_now()
    mark: dict[str, Any] = {"status": Status(status).value, "at": iso_z(now), "by": by}
    mark["source"] = MarkSource.TEACHER.value
    if remark is not None:
        mark["remark"] = remark or None
    payload = MarkedPayload(studentId=student_id, status=Status(status))

    def change() -> None:
        if connection.vendor == "mongodb":
            applied, current = _mark_document(session.id, student_id, mark, now)
        else:
            applied, current = _mark_row(session.id, student_id, mark, now)
        if not applied:
            raise NotFound(messages.NO_SESSION)
        _log([_change(session.id, student_id, {**mark, "remark": current}, now, by)])
        broadcast_on_commit(session.class_id, "ATTENDANCE_MARKED", payload, origin)

    _atomically(change)


# SQL: one conditional UPDATE that merges the mark into the student's key in the database (no read of the
# other marks, whose number grows with the class; a mark without a remark keeps the current one): it locks the
# row (SQLite: the database), applies only to a session still live, and returns the remark now current.
_SET_MARK = {
    "sqlite": (
        "json_set(marks, %(path)s, json_patch(coalesce(json_extract(marks, %(path)s), '{}'), json(%(mark)s)))",
        "json_extract(marks, %(path)s || '.remark')",
    ),
    "postgresql": (
        "jsonb_set(marks, %(path)s, coalesce(marks -> %(key)s, '{}'::jsonb) || %(mark)s::jsonb)",
        "marks -> %(key)s ->> 'remark'",
    ),
}


def _mark_row(session_id: str, student_id: str, mark: dict[str, Any], now: datetime) -> tuple[bool, str | None]:
    ops = connection.ops
    sql = _SET_MARK.get(connection.vendor)
    if sql is None:  # another SQL database: read, change, write, under the row's lock
        live = _live_row(session_id, now).select_for_update()
        marks = live.values_list("marks", flat=True).first()
        if marks is None:
            return False, None
        merged = {**marks.get(student_id, {}), **mark}
        AttendanceSession.objects.filter(pk=session_id).update(marks={**marks, student_id: merged}, updated_at=now)
        return True, merged.get("remark")
    set_mark, remark = sql
    table = ops.quote_name(AttendanceSession._meta.db_table)
    updated = ops.quote_name("updatedAt")
    params: dict[str, Any] = {
        "path": f'$."{student_id}"' if connection.vendor == "sqlite" else [student_id],
        "key": student_id,
        # SQLite's json_patch removes a key set to null (a cleared remark); PostgreSQL keeps it null.
        "mark": json.dumps(mark),
        "now": ops.adapt_datetimefield_value(now),
        "id": session_id,
        "live": SessionState.LIVE.value,
        "cutoff": ops.adapt_datetimefield_value(live_cutoff(now)),
    }
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET marks = {set_mark}, {updated} = %(now)s"  # noqa: S608 (names are ours, values bound)
            f" WHERE {ops.quote_name('_id')} = %(id)s AND state = %(live)s AND {updated} >= %(cutoff)s"
            f" RETURNING {remark}",
            params,
        )
        row = cursor.fetchone()
    return (False, None) if row is None else (True, row[0])


def _live_row(session_id: str, now: datetime) -> Any:
    return AttendanceSession.objects.filter(pk=session_id, state=SessionState.LIVE, updated_at__gte=live_cutoff(now))


def _sessions() -> Any:
    return connection.get_collection(AttendanceSession._meta.db_table)  # type: ignore[attr-defined]


def _live_filter(session_id: str, now: datetime) -> dict[str, Any]:
    return {"_id": ObjectId(session_id), "state": SessionState.LIVE.value, "updatedAt": {"$gte": live_cutoff(now)}}


def _mark_document(session_id: str, student_id: str, mark: dict[str, Any], now: datetime) -> tuple[bool, str | None]:
    """MongoDB: one single-document conditional update (atomic without a transaction; it waits for, or
    conflicts with, a DONE's transaction holding the document); returns the remark now current."""
    found = _sessions().find_one_and_update(
        _live_filter(session_id, now),
        {"$set": {**{f"marks.{student_id}.{key}": value for key, value in mark.items()}, "updatedAt": now}},
        projection={f"marks.{student_id}.remark": 1},
        return_document=ReturnDocument.AFTER,
        session=_mongodb_session(),
    )
    if found is None:
        return False, None
    return True, found.get("marks", {}).get(student_id, {}).get("remark")


def _mongodb_session() -> Any:
    """The backend's transaction session, if a transaction is open (raw collection calls must pass it)."""
    return getattr(connection, "session", None)


def mark_all(session: Session, status: str, by: str, origin: Origin | None = None) -> list[str]:
    """MARK_ALL: every enrolled student without a mark gets `status`; a mark already made (a concurrent one
    included) is never overwritten. One broadcast: the ids it marked, in enrolment order."""
    now = utc_now()
    status = str(Status(status))
    enrolled = classes.student_ids(session.class_id)
    mark = {"status": status, "at": iso_z(now), "by": by, "source": MarkSource.TEACHER.value}

    def change() -> list[str]:
        if connection.vendor == "mongodb":
            marked = _mark_all_document(session.id, enrolled, mark, now)
        else:
            marked = _mark_all_row(session.id, enrolled, mark, now)
        if marked is None:
            raise NotFound(messages.NO_SESSION)
        _log([_change(session.id, sid, mark, now, by) for sid in marked])
        payload = MarkAllPayload(status=Status(status), studentIds=marked)
        broadcast_on_commit(session.class_id, "MARK_ALL", payload, origin)
        return marked

    return _atomically(change)


def _mark_all_row(session_id: str, enrolled: list[str], mark: dict[str, Any], now: datetime) -> list[str] | None:
    """SQL, in a transaction: the conditional UPDATE takes the row's lock first (SQLite: the database), so the
    marks read next are final until the commit; then the blanks are filled."""
    if not _live_row(session_id, now).update(updated_at=now):
        return None
    marks = AttendanceSession.objects.filter(pk=session_id).values_list("marks", flat=True).get() or {}
    marked = [sid for sid in enrolled if sid not in marks]
    if marked:
        AttendanceSession.objects.filter(pk=session_id).update(marks={**marks, **{sid: mark for sid in marked}})
    return marked


def _mark_all_document(session_id: str, enrolled: list[str], mark: dict[str, Any], now: datetime) -> list[str] | None:
    """MongoDB: one single-document update whose pipeline merges the blanks under the marks made (those win);
    the document as it was before tells which students it marked."""
    before = _sessions().find_one_and_update(
        _live_filter(session_id, now),
        [
            {
                "$set": {
                    "marks": {"$mergeObjects": [{"$literal": {sid: mark for sid in enrolled}}, "$marks"]},
                    "updatedAt": now,
                }
            }
        ],
        projection={"marks": 1},
        return_document=ReturnDocument.BEFORE,
        session=_mongodb_session(),
    )
    if before is None:
        return None
    made = before.get("marks") or {}
    return [sid for sid in enrolled if sid not in made]


def clear_mark(session: Session, student_id: str, by: str, origin: Origin | None = None) -> None:
    """ATTENDANCE_CLEARED: the student is unmarked again (remark removed); logged; broadcast."""
    check_enrolled(session, student_id)
    now = utc_now()

    def change() -> None:
        if connection.vendor == "mongodb":
            applied = bool(
                _sessions()
                .update_one(
                    _live_filter(session.id, now),
                    {"$unset": {f"marks.{student_id}": ""}, "$set": {"updatedAt": now}},
                    session=_mongodb_session(),
                )
                .matched_count
            )
        else:
            applied = _clear_row(session.id, student_id, now)
        if not applied:
            raise NotFound(messages.NO_SESSION)
        _log([_change(session.id, student_id, None, now, by)])
        broadcast_on_commit(session.class_id, "ATTENDANCE_CLEARED", ClearedPayload(studentId=student_id), origin)

    _atomically(change)


_REMOVE_MARK = {"sqlite": "json_remove(marks, %s)", "postgresql": "marks - %s"}


def _clear_row(session_id: str, student_id: str, now: datetime) -> bool:
    remove = _REMOVE_MARK.get(connection.vendor)
    if remove is None:  # another SQL database: read, change, write, under the row's lock
        marks = _live_row(session_id, now).select_for_update().values_list("marks", flat=True).first()
        if marks is None:
            return False
        marks.pop(student_id, None)
        return bool(_live_row(session_id, now).update(marks=marks, updated_at=now))
    ops = connection.ops
    table = ops.quote_name(AttendanceSession._meta.db_table)
    updated = ops.quote_name("updatedAt")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET marks = {remove}, {updated} = %s"  # noqa: S608 (names are ours, values bound)
            f" WHERE {ops.quote_name('_id')} = %s AND state = %s AND {updated} >= %s",
            [
                f'$."{student_id}"' if connection.vendor == "sqlite" else student_id,
                ops.adapt_datetimefield_value(now),
                session_id,
                SessionState.LIVE.value,
                ops.adapt_datetimefield_value(live_cutoff(now)),
            ],
        )
        return bool(cursor.rowcount)


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
    # This attempt's token, kept on the persisted session: after an error, it tells "my commit went through
    # (its reply was lost)" from "another DONE won" (a MongoDB write conflict fails the loser at once).
    token = secrets.token_hex(8)
    for attempt in range(_DONE_RETRIES):
        try:
            with atomic if atomic is not None else nullcontext():
                summary = _take_and_write(session, token)
                broadcast_on_commit(session.class_id, "DONE", DonePayload(**summary), origin)
            return summary
        except DatabaseError as error:
            if attempt + 1 < _DONE_RETRIES and _transient(error):
                # Another DONE (or a mark) holds the session in its transaction (MongoDB): run again once it
                # is done; the retry then finds the session taken ("No active attendance session") or takes it.
                time.sleep(min(0.02 * 2**attempt, 1.0))
                atomic = transaction_if_supported()
                continue
            logger.exception("Persisting the session %s of class %s failed", session.id, session.class_id)
            return _persisted_after_all(session, origin, token)
    raise AssertionError("unreachable")


def _take_and_write(session: Session, token: str) -> Summary:
    """In a transaction: the conditional update takes (and locks) the session first, so that the marks read
    next are final; then the records."""
    now = utc_now()
    taken = AttendanceSession.objects.filter(
        pk=session.id, state=SessionState.LIVE, updated_at__gte=live_cutoff(now)
    ).update(state=SessionState.PERSISTED, ended_at=now, updated_at=now, claim=token)
    if not taken:
        raise NotFound(messages.NO_SESSION)
    row = AttendanceSession.objects.get(pk=session.id)
    records, summary = _records(row, now)
    Attendance.objects.bulk_create(records, batch_size=5000)
    _log_done(records, now, row.teacher_id)
    return summary


def _records(row: AttendanceSession, now: datetime) -> tuple[list[Attendance], Summary]:
    """One record per enrolled student: its mark (with remark, at, by, source), or absent made by DONE (by the
    session's teacher, now)."""
    marks = row.marks or {}
    enrolled = classes.student_ids(row.klass_id)
    records = []
    for sid in enrolled:
        mark = marks.get(sid)
        records.append(
            Attendance(
                session_id=row.id,
                klass_id=row.klass_id,
                student_id=sid,
                status=Status.ABSENT if mark is None else mark["status"],
                started_at=row.started_at,
                remark=None if mark is None else mark.get("remark"),
                at=now if mark is None else datetime.fromisoformat(mark["at"]),
                by=row.teacher_id if mark is None else mark["by"],
                source=MarkSource.DONE if mark is None else mark["source"],
            )
        )
    return records, count_statuses((record.status for record in records), len(records))


def _log_done(records: list[Attendance], now: datetime, by: str) -> None:
    """The change log gets DONE's absents (the other records' changes are logged already)."""
    done = [r for r in records if r.source == MarkSource.DONE]
    _log([_change(r.session_id, r.student_id, {"status": r.status}, now, by, MarkSource.DONE) for r in done])


def _persisted_after_all(session: Session, origin: Origin | None, token: str) -> Summary:
    """A DONE that met a database error: persisted after all by this attempt (the reply was lost), persisted
    by another DONE (this one lost the race), or failed."""
    try:
        summary = persisted_summary(session.id, by_claim=token)
        if summary is None and persisted_summary(session.id) is not None:
            raise NotFound(messages.NO_SESSION)
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
        AttendanceChange.objects.filter(session_id=session.id, source=MarkSource.DONE).delete()
        records, summary = _records(row, now)
        Attendance.objects.bulk_create(records, batch_size=5000)
        _log_done(records, now, row.teacher_id)
        committed = _commit_claim(session.id, token)
    except DatabaseError:
        logger.exception("Persisting the session %s of class %s failed", session.id, session.class_id)
        with suppress(DatabaseError):
            if (summary_after_all := persisted_summary(session.id, by_claim=token)) is not None:
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
            # The token stays: it names the attempt that persisted the session (see _persisted_after_all).
            state=SessionState.PERSISTED, ended_at=utc_now(), updated_at=utc_now(), claim_until=None
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
            AttendanceChange.objects.filter(session_id=records[0].session_id, source=MarkSource.DONE).delete()


# --- corrections after DONE -----------------------------------------------------------------------------


def correct_record(
    teacher: User, class_id: str, session_id: str, student_id: str, status: str, remark: str | None
) -> SessionRecord:
    """PATCH …/records/:studentId: change a persisted record (source "correction"), logged in the same
    transaction where there is one. Of two corrections at once both are logged and the last one wins (each is
    one conditional update of the record). `remark` None keeps the current one, "" clears it.

    Check order: 404 class → 403 ownership → 404 "Session not found" → 404 "Student not found"."""
    klass = classes.owned_class(class_id, teacher)
    session = history.persisted_session(klass, session_id)
    now = utc_now()
    fields: dict[str, Any] = {"status": Status(status).value, "at": now, "by": teacher.id}
    fields["source"] = MarkSource.CORRECTION.value
    if remark is not None:
        fields["remark"] = remark or None

    def change() -> SessionRecord:
        found = is_object_id(student_id) and Attendance.objects.filter(
            session_id=session.id, student_id=student_id
        ).update(**fields)
        if not found:
            raise NotFound(messages.STUDENT_NOT_FOUND)
        # The record as this correction left it (without a transaction, another one may have followed already).
        current = history.record(klass, session, student_id)
        kept = fields["remark"] if "remark" in fields else current.remark
        _log([_change(session.id, student_id, {**fields, "remark": kept}, now, teacher.id, fields["source"])])
        mine = {"status": Status(status), "remark": kept, "at": now, "by": teacher.id}
        return current.model_copy(update={**mine, "source": MarkSource.CORRECTION})

    return _atomically(change)


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
            AttendanceChange.objects.filter(session_id=session_id, source=MarkSource.DONE).delete()
            logger.warning("Recovered: the claimed session %s is live again", session_id)
            recovered += 1
    return recovered


def expire_sessions() -> int:
    """Live sessions without a change for SESSION_TTL_SECONDS become expired (readers already ignore them)."""
    stale = AttendanceSession.objects.filter(state=SessionState.LIVE, updated_at__lt=live_cutoff())
    return stale.update(state=SessionState.EXPIRED)
