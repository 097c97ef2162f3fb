from django.conf import settings
from django.db import models

from classes.models import Class
from common.fields import ObjectIdField


class Status(models.TextChoices):
    PRESENT = "present"
    ABSENT = "absent"


class Attendance(models.Model):
    """One student's persisted status for one session of a class (the spec's Attendance, plus the
    session's `startedAt` so that history accumulates across sessions)."""

    id = ObjectIdField(primary_key=True)
    klass = models.ForeignKey(Class, on_delete=models.CASCADE, related_name="attendance", db_column="classId")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attendance", db_column="studentId"
    )
    status = models.CharField(max_length=7, choices=Status.choices)
    started_at = models.DateTimeField(db_column="startedAt")

    class Meta:
        db_table = "attendance"
        ordering = ["-started_at", "id"]
        constraints = [
            # A session is persisted once: a second write of it fails instead of duplicating it.
            models.UniqueConstraint(fields=["klass", "started_at", "student"], name="one_record_per_session"),
        ]
        indexes = [models.Index(fields=["klass", "student", "-started_at"], name="attendance_latest")]

    def __str__(self) -> str:
        return f"{self.student_id} {self.status} in {self.klass_id} at {self.started_at:%Y-%m-%d %H:%M}"


class AttendanceSession(models.Model):
    """One persisted session of a class: the commit point of its Attendance records.

    persist_session writes it `committed=False` first, then the records, then flips it to `committed=True`
    in one single-document write; readers count a record only when its session is committed. Where the
    database has transactions (SQL, a MongoDB replica set) all of this is one transaction and the flag is
    never seen false; on a standalone MongoDB, which has none, the flip is what makes a whole session
    visible at once, and records of an attempt that failed before it stay invisible until a retry replaces
    them.

    `ended_at` is when DONE committed the session (null until then). Sessions persisted before the field
    existed have their start time there (migration 0003): when they ended was not recorded."""

    id = ObjectIdField(primary_key=True)
    klass = models.ForeignKey(Class, on_delete=models.CASCADE, related_name="sessions", db_column="classId")
    started_at = models.DateTimeField(db_column="startedAt")
    ended_at = models.DateTimeField(db_column="endedAt", null=True, blank=True)
    committed = models.BooleanField(default=False)

    class Meta:
        db_table = "attendance_sessions"
        ordering = ["-started_at", "id"]
        constraints = [models.UniqueConstraint(fields=["klass", "started_at"], name="one_session_per_start")]

    def __str__(self) -> str:
        state = "persisted" if self.committed else "being persisted"
        return f"{self.klass_id} at {self.started_at:%Y-%m-%d %H:%M} ({state})"
