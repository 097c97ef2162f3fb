from __future__ import annotations

from django.conf import settings
from django.db import models

from classes.models import Class
from common.fields import ObjectIdField
from common.prepared import PreparedQuery


class Status(models.TextChoices):
    PRESENT = "present"
    ABSENT = "absent"
    LATE = "late"
    EXCUSED = "excused"


class MarkSource(models.TextChoices):
    """How a change was made (`source` of a session's marks, its records and its change log)."""

    TEACHER = "teacher"  # a mark, MARK_ALL or a clear
    CHECK_IN = "check-in"
    DONE = "done"  # made absent by DONE
    CORRECTION = "correction"  # after DONE


REMARK_MAX_LENGTH = 500


class SessionState(models.TextChoices):
    """Where a session is in its life. Only `persisted` sessions count (history, reports, my-attendance)."""

    LIVE = "live"  # started, taking marks
    PERSISTING = "persisting"  # DONE claimed it (a database without transactions: standalone MongoDB)
    PERSISTED = "persisted"  # DONE wrote its records
    REPLACED = "replaced"  # its teacher started another one
    EXPIRED = "expired"  # SESSION_TTL_SECONDS without a change


class AttendanceSessionQuerySet(models.QuerySet["AttendanceSession"]):
    def persisted(self) -> AttendanceSessionQuerySet:
        """The sessions whose records count: those DONE persisted."""
        return self.filter(state=SessionState.PERSISTED)


class AttendanceQuerySet(models.QuerySet["Attendance"]):
    def counted_in(self, class_id: str) -> AttendanceQuerySet:
        """The class's records that count: those of its persisted sessions (the only place that says so).

        The class's persisted session ids are read first (one query on the class's sessions), not joined in a
        subquery: on MongoDB that subquery is a $lookup over every session of every class."""
        return self.counted_among(class_id, persisted_session_ids(class_id))

    def counted_among(self, class_id: str, session_ids: list[str]) -> AttendanceQuerySet:
        """counted_in's records, given what persisted_session_ids(class_id) read: for a query prepared once
        (common/prepared.py), which cannot read anything while it is built."""
        return self.filter(klass_id=class_id, session_id__in=session_ids)


def persisted_session_ids(class_id: str) -> list[str]:
    """The ids of the class's persisted sessions (one query, compiled once)."""
    return _persisted_session_ids(class_id)


class Attendance(models.Model):
    """One student's persisted status for one session of a class (the spec's Attendance, plus the
    session's `startedAt` so that history accumulates across sessions)."""

    id = ObjectIdField(primary_key=True)
    klass = models.ForeignKey(Class, on_delete=models.CASCADE, related_name="attendance", db_column="classId")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attendance", db_column="studentId"
    )
    status = models.CharField(max_length=7, choices=Status.choices)
    session = models.ForeignKey(
        "AttendanceSession", on_delete=models.CASCADE, related_name="records", db_column="sessionId"
    )
    # The session's startedAt, kept on each record: history and reports sort and key by it.
    started_at = models.DateTimeField(db_column="startedAt")
    remark = models.CharField(max_length=REMARK_MAX_LENGTH, null=True, blank=True)
    # The last change of this student's status in the session: when, by whom (a user id), how.
    # Null only on records persisted before these fields existed (migration 0007 fills what it can).
    at = models.DateTimeField(null=True, blank=True)
    by = models.CharField(max_length=24, null=True, blank=True)
    source = models.CharField(max_length=10, choices=MarkSource.choices, null=True, blank=True)

    objects = AttendanceQuerySet.as_manager()

    class Meta:
        db_table = "attendance"
        ordering = ["-started_at", "id"]
        constraints = [
            # A session is persisted once: a second write of it fails instead of duplicating it.
            models.UniqueConstraint(fields=["session", "student"], name="one_record_per_session_id"),
        ]
        # A student's latest record in a class (the class, the student, newest first) — and, with the status and
        # the session after those, everything a report's counts read: answered from the index alone (live.history
        # standings; migration 0009).
        indexes = [
            models.Index(fields=["klass", "student", "-started_at", "status", "session"], name="attendance_latest")
        ]

    def __str__(self) -> str:
        return f"{self.student_id} {self.status} in {self.klass_id} at {self.started_at:%Y-%m-%d %H:%M}"


class AttendanceSession(models.Model):
    """A class's attendance session, from POST /attendance/start on: the database is its only copy.

    `marks` holds the live marks ({studentId: {status, remark?, at, by, source}}), each written before it is
    broadcast (and logged in AttendanceChange); DONE turns them into Attendance records and the state into
    `persisted` (live.commands).
    `updated_at` is its last change: a live session older than SESSION_TTL_SECONDS is no longer live.
    `claim` / `claim_until` fence DONE where the database has no transactions (standalone MongoDB).

    `ended_at` is when DONE persisted the session (null until then). Sessions persisted before the field
    existed have their start time there (migration 0003): when they ended was not recorded."""

    id = ObjectIdField(primary_key=True)
    klass = models.ForeignKey(Class, on_delete=models.CASCADE, related_name="sessions", db_column="classId")
    teacher = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attendance_sessions", db_column="teacherId"
    )
    state = models.CharField(max_length=10, choices=SessionState.choices, default=SessionState.LIVE)
    marks = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(db_column="startedAt")
    updated_at = models.DateTimeField(db_column="updatedAt")
    ended_at = models.DateTimeField(db_column="endedAt", null=True, blank=True)
    claim = models.CharField(max_length=32, null=True, blank=True)
    claim_until = models.DateTimeField(db_column="claimUntil", null=True, blank=True)
    # The self check-in window (live.checkin), null while none is open: its secret (codes are computed from it,
    # it never leaves the server), when it opened and closes, the rotation period, minutes after which a
    # check-in is late (null: never), and the wrong codes per student in this window ({studentId: n}).
    # Closing it empties them all, `checkin_closes_at` first (the upkeep's index finds open windows by it).
    checkin_secret = models.CharField(max_length=64, null=True, blank=True, db_column="checkinSecret")
    checkin_opened_at = models.DateTimeField(db_column="checkinOpenedAt", null=True, blank=True)
    checkin_closes_at = models.DateTimeField(db_column="checkinClosesAt", null=True, blank=True)
    checkin_rotate_seconds = models.PositiveIntegerField(db_column="checkinRotateSeconds", null=True, blank=True)
    checkin_late_after = models.PositiveIntegerField(db_column="checkinLateAfterMinutes", null=True, blank=True)
    checkin_failures = models.JSONField(db_column="checkinFailures", default=dict, blank=True)

    objects = AttendanceSessionQuerySet.as_manager()

    class Meta:
        db_table = "attendance_sessions"
        ordering = ["-started_at", "id"]
        constraints = [models.UniqueConstraint(fields=["klass", "started_at"], name="one_session_per_start")]
        indexes = [
            models.Index(fields=["teacher", "state"], name="session_of_teacher"),
            models.Index(fields=["klass", "state"], name="sessions_of_class"),
            models.Index(fields=["checkin_closes_at"], name="open_checkin_windows"),
        ]

    def __str__(self) -> str:
        return f"{self.klass_id} at {self.started_at:%Y-%m-%d %H:%M} ({self.state})"


class AttendanceChange(models.Model):
    """One change of a student's status in a session, in the order made: a mark, MARK_ALL, a clear
    (`status` null), a check-in, DONE's absents, a correction. The session's `marks` (live) and its records
    (persisted) hold the current state; this is the log (GET /class/:id/sessions/:sessionId/changes)."""

    id = ObjectIdField(primary_key=True)
    session = models.ForeignKey(
        AttendanceSession, on_delete=models.CASCADE, related_name="changes", db_column="sessionId"
    )
    student_id = models.CharField(max_length=24, db_column="studentId")
    status = models.CharField(max_length=7, choices=Status.choices, null=True, blank=True)
    remark = models.CharField(max_length=REMARK_MAX_LENGTH, null=True, blank=True)
    at = models.DateTimeField()
    by = models.CharField(max_length=24)
    source = models.CharField(max_length=10, choices=MarkSource.choices)

    class Meta:
        db_table = "attendance_changes"
        # `id` breaks ties within a millisecond: ObjectIds grow with time within a process.
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["session", "at"], name="changes_of_session")]

    def __str__(self) -> str:
        change = self.status or "cleared"
        return f"{self.student_id} {change} by {self.by} ({self.source}) at {self.at:%Y-%m-%d %H:%M:%S}"


# (Defined after the model it reads: persisted_session_ids above.)
_persisted_session_ids = PreparedQuery(
    AttendanceSession,
    lambda class_id: AttendanceSession.objects.persisted().filter(klass_id=class_id).values_list("id", flat=True),
)
