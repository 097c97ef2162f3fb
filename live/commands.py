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
from django.db.models import Q, QuerySet
from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from accounts.models import User
from classes import services as classes
from common import messages
from common.errors import DomainError, Forbidden, Invalid, NotFound, NotNow, TooManyRequests, Unavailable
from common.fields import is_object_id
from common.schemas import iso_z
from live import alerts, history
from live.checkin import MAX_WRONG_CODES, Window, new_secret
from live.models import Attendance, AttendanceChange, AttendanceSession, MarkSource, SessionState, Status
from live.notify import user_group
from live.publisher import Origin, broadcast_on_commit, notify_on_commit
from live.schemas import (
    CheckInClosedPayload,
    CheckInOpenedPayload,
    ClearedPayload,
    DonePayload,
    MarkAllPayload,
    MarkedPayload,
    SessionRecord,
)
from live.selectors import (
    Session,
    Summary,
    check_enrolled,
    count_statuses,
    live_cutoff,
    persisted_summary,
    student_sessions,
)

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
        # A replaced session's open check-in window closes with it (each conditionally: announced once).
        for session_id, replaced_class in live.filter(checkin_closes_at__isnull=False).values_list("id", "klass_id"):
            rows = live.filter(pk=session_id, checkin_closes_at__isnull=False)
            _close_window_of(rows, replaced_class, state=SessionState.REPLACED, updated_at=started_at)
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
                summary = _take_and_write(session, token, origin)
                _announce_done(session, summary, origin)
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


def _announce_done(session: Session, summary: Summary, origin: Origin | None) -> None:
    """After the DONE commits: its broadcast, and the email to each student it put at risk (live.alerts: on a
    thread of its own, so neither delays nor fails the DONE)."""
    broadcast_on_commit(session.class_id, "DONE", DonePayload(**summary), origin)
    alerts.notify_on_commit(session.class_id, session.id)


def _take_and_write(session: Session, token: str, origin: Origin | None = None) -> Summary:
    """In a transaction: the conditional update takes (and locks) the session first, so that the marks read
    next are final; then the records. An open check-in window closes (announced before DONE)."""
    now = utc_now()
    taken = AttendanceSession.objects.filter(
        pk=session.id, state=SessionState.LIVE, updated_at__gte=live_cutoff(now)
    ).update(state=SessionState.PERSISTED, ended_at=now, updated_at=now, claim=token)
    if not taken:
        raise NotFound(messages.NO_SESSION)
    row = AttendanceSession.objects.get(pk=session.id)
    if row.checkin_closes_at is not None:
        _close_window_at_done(session, origin)
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
    if session.window is not None:
        # Closed in the DONE's transaction, whose after-commit broadcasts the failed commit dropped; the upkeep
        # cannot find it either (the window is cleared), so it is announced here.
        broadcast_on_commit(session.class_id, "CHECKIN_CLOSED", CheckInClosedPayload(), origin)
    _announce_done(session, summary, origin)
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
                _announce_done(session, summary_after_all, origin)
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
    try:
        _close_window_at_done(session, origin)
    except DatabaseError:  # the session is persisted: the upkeep closes the window (and announces it) later
        logger.warning("Closing the check-in window of session %s failed", session.id, exc_info=True)
    _announce_done(session, summary, origin)
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


# --- self check-in --------------------------------------------------------------------------------------
# The window lives on the session's record (live.checkin); every change to it is one conditional update, so that
# of several processes (teacher sockets' timers, the upkeep, DONE) exactly one announces its closing.

WINDOW_CLOSED: dict[str, Any] = {
    "checkin_secret": None,
    "checkin_opened_at": None,
    "checkin_closes_at": None,
    "checkin_rotate_seconds": None,
    "checkin_late_after": None,
    "checkin_failures": {},
}


def open_checkin(
    session: Session, minutes: int, rotate_seconds: int, late_after_minutes: int | None, origin: Origin | None = None
) -> Window:
    """CHECKIN_OPEN: open (or reopen: a new secret, wrong codes forgotten) the session's window; broadcast
    CHECKIN_OPENED; the teacher's sockets, in every process, start showing its codes (live.consumers)."""
    now = utc_now()
    fields: dict[str, Any] = {
        "checkin_secret": new_secret(),
        "checkin_opened_at": now,
        "checkin_closes_at": now + timedelta(minutes=minutes),
        "checkin_rotate_seconds": rotate_seconds,
        "checkin_late_after": late_after_minutes,
        "checkin_failures": {},
    }
    if not _live_row(session.id, now).update(updated_at=now, **fields):
        raise NotFound(messages.NO_SESSION)
    row = AttendanceSession(id=session.id, klass_id=session.class_id, teacher_id=session.teacher_id, **fields)
    window = Window.from_row(row)
    assert window is not None
    opened = CheckInOpenedPayload(closesAt=iso_z(window.closes_at))
    broadcast_on_commit(session.class_id, "CHECKIN_OPENED", opened, origin)
    notify_on_commit(user_group(session.teacher_id), {"kind": "checkin"})
    return window


def _close_window_of(
    rows: QuerySet[AttendanceSession], class_id: str, origin: Origin | None = None, **also: Any
) -> bool:
    """Close the window of the session `rows` selects, if it still matches (with the other changes `also`);
    True for the one caller whose update did, which announces CHECKIN_CLOSED after commit."""
    if not rows.update(**WINDOW_CLOSED, **also):
        return False
    broadcast_on_commit(class_id, "CHECKIN_CLOSED", CheckInClosedPayload(), origin)
    return True


def close_checkin(session: Session, origin: Origin | None = None) -> None:
    """CHECKIN_CLOSE: close the session's window now; "Check-in is not open" if it has none."""
    now = utc_now()
    rows = _live_row(session.id, now).filter(checkin_closes_at__isnull=False)
    if not _close_window_of(rows, session.class_id, origin, updated_at=now):
        raise NotNow(messages.CHECKIN_NOT_OPEN)


def close_window(window: Window) -> bool:
    """Close this window if it is still the session's (not reopened, not closed by another process meanwhile);
    True for the one caller that did."""
    rows = AttendanceSession.objects.filter(pk=window.session_id, checkin_secret=window.secret)
    return _close_window_of(rows, window.class_id)


def _close_window_at_done(session: Session, origin: Origin | None) -> None:
    rows = AttendanceSession.objects.filter(pk=session.id, checkin_closes_at__isnull=False)
    _close_window_of(rows, session.class_id, origin)


def close_ended_windows(limit: int = 500) -> int:
    """The upkeep's: close the windows past their end, and those of sessions no longer live (expired; replaced
    or persisted without closing theirs after an error). A session being persisted (a claim) is left to its
    DONE. Returns how many this call closed."""
    now = utc_now()
    cutoff = live_cutoff(now)
    # Only the windows due (past their end, or of a session no longer live), soonest first: a batch never
    # fills up with windows still open while due ones wait behind them.
    due = (
        Q(checkin_closes_at__lte=now)
        | ~Q(state__in=[SessionState.LIVE, SessionState.PERSISTING])
        | Q(state=SessionState.LIVE, updated_at__lt=cutoff)
    )
    rows = (
        AttendanceSession.objects.filter(due, checkin_closes_at__isnull=False)
        .order_by("checkin_closes_at")
        .defer("marks")[:limit]
    )
    windows = (Window.from_row(row) for row in rows)  # every one due: the query chose them
    return sum(1 for window in windows if window is not None and close_window(window))


def check_in_to_class(student: User, class_id: str, code: str) -> Status:
    """POST /attendance/check-in: enrolment first (403), then the class's live session (404), then CHECK_IN's
    rules."""
    if not (is_object_id(class_id) and classes.is_enrolled(class_id, student.id)):
        raise Forbidden(messages.NOT_ENROLLED)
    sessions = student_sessions([class_id])
    if not sessions:
        raise NotFound(messages.NO_SESSION)
    return check_in(sessions[0], student.id, code)


def check_in(session: Session, student_id: str, code: str, origin: Origin | None = None) -> Status:
    """CHECK_IN: the student marks themselves present (late once the window's lateAfterMinutes have passed)
    with the current or the previous code; logged (source check-in, by the student) and broadcast.

    Checks, in order: the window is open (409 "Check-in is not open"); fewer than 5 wrong codes in this window
    (429 "Too many attempts"); the code (400 "Invalid or expired code", counted); not marked yet, by anyone (409
    "Already marked": never overwritten). The attempt is counted before the code is compared and given back if
    it was right, so that concurrent attempts (socket and HTTP) cannot compare more than 5 wrong codes."""
    now = utc_now()
    window = session.window
    if window is None or not window.is_open(now):
        raise NotNow(messages.CHECKIN_NOT_OPEN)
    if window.wrong_codes(student_id) >= MAX_WRONG_CODES:
        raise _too_many_attempts(window, now)
    attempts = _count_attempt(window, student_id, 1)
    if attempts is None:  # closed or reopened since it was read
        raise NotNow(messages.CHECKIN_NOT_OPEN)
    if attempts > MAX_WRONG_CODES:
        raise _too_many_attempts(window, now)
    if not window.accepts(code, now):
        raise Invalid(messages.INVALID_CODE)
    _count_attempt(window, student_id, -1)  # a right code is not a wrong one
    status = window.status_at(now)
    mark = {"status": status.value, "at": iso_z(now), "by": student_id, "source": MarkSource.CHECK_IN.value}

    def change() -> None:
        if connection.vendor == "mongodb":
            applied = _check_in_document(window, student_id, mark, now)
        else:
            applied = _check_in_row(window, student_id, mark, now)
        if not applied:
            raise _why_not_checked_in(window, student_id, now)
        _log([_change(session.id, student_id, mark, now, student_id, MarkSource.CHECK_IN.value)])
        payload = MarkedPayload(studentId=student_id, status=status)
        broadcast_on_commit(session.class_id, "ATTENDANCE_MARKED", payload, origin)

    _atomically(change)
    return status


def _too_many_attempts(window: Window, now: datetime) -> TooManyRequests:
    """Retry-After: until the window closes (1–900 s, as every limit's): a new window starts the count again."""
    left = int((window.closes_at - now).total_seconds()) + 1
    return TooManyRequests(messages.TOO_MANY_ATTEMPTS, retry_after=max(1, min(left, 900)))


# The wrong codes of one student in the window: one conditional UPDATE (on this window's secret) that adds to their
# key and returns the new count; SQLite and PostgreSQL change the key with their JSON functions.
_ADD_ATTEMPT = {
    "sqlite": (
        "json_set(coalesce({col}, '{{}}'), %(path)s, coalesce(json_extract({col}, %(path)s), 0) + %(delta)s)",
        "json_extract({col}, %(path)s)",
    ),
    "postgresql": (
        "jsonb_set(coalesce({col}, '{{}}'::jsonb), %(path)s,"
        " to_jsonb(coalesce(({col} ->> %(key)s)::integer, 0) + %(delta)s))",
        "({col} ->> %(key)s)::integer",
    ),
}


def _count_attempt(window: Window, student_id: str, delta: int) -> int | None:
    """Add `delta` to the student's count in this window; the new count, or None if the window is not the
    session's any more (closed, or reopened with a new secret)."""
    if connection.vendor == "mongodb":
        found = _sessions().find_one_and_update(
            {"_id": ObjectId(window.session_id), "checkinSecret": window.secret},
            {"$inc": {f"checkinFailures.{student_id}": delta}},
            projection={f"checkinFailures.{student_id}": 1},
            return_document=ReturnDocument.AFTER,
        )
        return None if found is None else int(found["checkinFailures"][student_id])
    sql = _ADD_ATTEMPT.get(connection.vendor)
    if sql is None:  # another SQL database: read, change, write, under the row's lock
        with transaction.atomic():
            rows = AttendanceSession.objects.select_for_update().filter(
                pk=window.session_id, checkin_secret=window.secret
            )
            failures = rows.values_list("checkin_failures", flat=True).first()
            if failures is None:
                return None
            count = int(failures.get(student_id, 0)) + delta
            rows.update(checkin_failures={**failures, student_id: count})
            return count
    ops = connection.ops
    col = ops.quote_name("checkinFailures")
    add, read = (part.format(col=col) for part in sql)
    table = ops.quote_name(AttendanceSession._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {col} = {add}"  # noqa: S608 (names are ours, values bound)
            f" WHERE {ops.quote_name('_id')} = %(id)s AND {ops.quote_name('checkinSecret')} = %(secret)s"
            f" RETURNING {read}",
            {
                "path": f'$."{student_id}"' if connection.vendor == "sqlite" else [student_id],
                "key": student_id,
                "delta": delta,
                "id": window.session_id,
                "secret": window.secret,
            },
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


# SQL: the check-in's mark is one conditional UPDATE: the session still live, the same window still open, and no
# mark of the student yet (a check-in never overwrites one).
_SET_NEW_MARK = {
    "sqlite": ("json_set(marks, %(path)s, json(%(mark)s))", "json_type(marks, %(path)s) IS NULL"),
    "postgresql": ("jsonb_set(marks, %(path)s, %(mark)s::jsonb)", "marks -> %(key)s IS NULL"),
}


def _check_in_row(window: Window, student_id: str, mark: dict[str, Any], now: datetime) -> bool:
    sql = _SET_NEW_MARK.get(connection.vendor)
    if sql is None:  # another SQL database: read, change, write, under the row's lock
        live = _live_row(window.session_id, now).filter(checkin_secret=window.secret, checkin_closes_at__gt=now)
        marks = live.select_for_update().values_list("marks", flat=True).first()
        if marks is None or student_id in marks:
            return False
        return bool(live.update(marks={**marks, student_id: mark}, updated_at=now))
    set_mark, unmarked = sql
    ops = connection.ops
    table = ops.quote_name(AttendanceSession._meta.db_table)
    updated = ops.quote_name("updatedAt")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET marks = {set_mark}, {updated} = %(now)s"  # noqa: S608 (names are ours, values bound)
            f" WHERE {ops.quote_name('_id')} = %(id)s AND state = %(live)s AND {updated} >= %(cutoff)s"
            f" AND {ops.quote_name('checkinSecret')} = %(secret)s AND {ops.quote_name('checkinClosesAt')} > %(now)s"
            f" AND {unmarked}",
            {
                "path": f'$."{student_id}"' if connection.vendor == "sqlite" else [student_id],
                "key": student_id,
                "mark": json.dumps(mark),
                "now": ops.adapt_datetimefield_value(now),
                "id": window.session_id,
                "live": SessionState.LIVE.value,
                "cutoff": ops.adapt_datetimefield_value(live_cutoff(now)),
                "secret": window.secret,
            },
        )
        return bool(cursor.rowcount)


def _check_in_document(window: Window, student_id: str, mark: dict[str, Any], now: datetime) -> bool:
    """MongoDB: one single-document conditional update."""
    query = {
        **_live_filter(window.session_id, now),
        "checkinSecret": window.secret,
        "checkinClosesAt": {"$gt": now},
        f"marks.{student_id}": {"$exists": False},
    }
    update = {"$set": {f"marks.{student_id}": mark, "updatedAt": now}}
    return bool(_sessions().update_one(query, update, session=_mongodb_session()).matched_count)


def _why_not_checked_in(window: Window, student_id: str, now: datetime) -> DomainError:
    """Why the check-in's conditional update matched nothing: the session ended, the window closed, or the
    student is marked already."""
    row = AttendanceSession.objects.filter(pk=window.session_id).first()
    if row is None or row.state != SessionState.LIVE or row.updated_at < live_cutoff(now):
        return NotFound(messages.NO_SESSION)
    if row.checkin_secret != window.secret or row.checkin_closes_at is None or row.checkin_closes_at <= now:
        return NotNow(messages.CHECKIN_NOT_OPEN)
    return NotNow(messages.ALREADY_MARKED)


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
