"""Reading live sessions and a student's own status: functions that change nothing.

The database is the only copy of a live session (live.models.AttendanceSession): every event reads it
here, one indexed query. A live session whose last change is older than SESSION_TTL_SECONDS is not live
for any reader (live.commands.expire_sessions marks it expired later). History and reports of persisted
sessions are live.history's.

Sync functions: the consumer calls them through live.db.db_call, or live.db.loop_read for its brief reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

from django.conf import settings
from django.db.models import Count

from accounts.auth import active_users
from accounts.models import Role, User
from classes import services as classes
from classes.models import Class, Enrollment
from common import messages
from common.errors import NotFound
from common.fields import is_object_id
from common.prepared import PreparedInstances, PreparedQuery
from common.schemas import iso_z
from live.checkin import Window
from live.models import Attendance, AttendanceSession, SessionState, Status, persisted_session_ids
from live.schemas import ActiveSession, CheckInState, CheckInWindow, LiveMark, PersistedStatus


class Summary(TypedDict):
    """Counts of a session: TODAY_SUMMARY's (total = marks so far) and DONE's (total = enrolled students)."""

    present: int
    absent: int
    late: int
    excused: int
    total: int


def count_statuses(found: Iterable[str], total: int | None = None) -> Summary:
    """The counts of these statuses; `total` = how many unless given (DONE's: the enrolled students)."""
    counts = Counter(found)
    summary: Summary = {
        "present": counts[Status.PRESENT],
        "absent": counts[Status.ABSENT],
        "late": counts[Status.LATE],
        "excused": counts[Status.EXCUSED],
        "total": 0,
    }
    summary["total"] = sum(counts[status] for status in Status) if total is None else total
    return summary


@dataclass(frozen=True)
class Session:
    """A live session as the consumer and the commands use it, read from its row."""

    id: str
    teacher_id: str
    class_id: str
    started_at: str  # ISO 8601 with milliseconds and "Z", as the spec's new Date().toISOString()
    attendance: dict[str, str] = field(default_factory=dict)  # studentId → status (the spec's shape)
    window: Window | None = None  # its check-in window, if one is open (or expired and not yet closed)

    @classmethod
    def from_row(cls, row: AttendanceSession, marks: bool = True) -> Session:
        return cls(
            id=row.id,
            teacher_id=row.teacher_id,
            class_id=row.klass_id,
            started_at=iso_z(row.started_at),
            attendance=statuses(row.marks) if marks else {},
            window=Window.from_row(row),
        )

    def counts(self, students: Collection[str] | None = None) -> Summary:
        """The marks so far; only those of `students` when given (the enrolled: a mark of a student removed or
        deleted since does not count, as DONE does not persist it)."""
        return count_statuses(s for sid, s in self.attendance.items() if students is None or sid in students)


def statuses(marks: dict[str, Any]) -> dict[str, str]:
    """studentId → status of a session's marks ({studentId: {status, remark?, at, by, source}})."""
    return {student_id: mark["status"] for student_id, mark in (marks or {}).items()}


def live_cutoff(now: datetime | None = None) -> datetime:
    """A live session last changed before this is expired (SESSION_TTL_SECONDS, every backend)."""
    return (now or datetime.now(tz=UTC)) - timedelta(seconds=settings.SESSION_TTL_SECONDS)


def live_sessions(cutoff: datetime | None = None) -> Any:
    """The sessions that are live now: state live and changed within the TTL (since `cutoff`, by default
    live_cutoff(): a prepared query passes it as a parameter)."""
    return AttendanceSession.objects.filter(
        state=SessionState.LIVE, updated_at__gte=live_cutoff() if cutoff is None else cutoff
    )


def teacher_session(teacher_id: str, marks: bool = True) -> Session | None:
    """The teacher's live session, or None (the newest, should two starts have raced without a transaction).

    Without `marks`, its `attendance` is left empty and unread: for events that do not read the marks (a mark,
    DONE), which would otherwise read and parse them all, a cost that grows with the class. Every socket event
    of a teacher reads it: compiled once (common/prepared.py)."""
    rows = (_teacher_live if marks else _teacher_live_unread)(teacher_id, live_cutoff())
    return Session.from_row(rows[0], marks) if rows else None


def _newest_live_of_teacher(teacher_id: str, cutoff: datetime) -> Any:
    return live_sessions(cutoff).filter(teacher_id=teacher_id).order_by("-started_at")[:1]


_teacher_live = PreparedInstances(AttendanceSession, _newest_live_of_teacher)
_teacher_live_unread = PreparedInstances(AttendanceSession, _newest_live_of_teacher, deferred=("marks",))


def active_session(teacher_id: str, marks: bool = True) -> Session:
    """The teacher's live session; NotFound without one (the socket's "No active attendance session")."""
    session = teacher_session(teacher_id, marks)
    if session is None:
        raise NotFound(messages.NO_SESSION)
    return session


def live_session(teacher: User) -> ActiveSession | None:
    """GET /attendance/active: the teacher's live session with its marks so far (what a client reloads)."""
    row = live_sessions().filter(teacher_id=teacher.id).order_by("-started_at").first()
    if row is None:
        return None
    marks = {
        student_id: LiveMark(
            status=mark["status"], remark=mark.get("remark"), at=mark["at"], by=mark["by"], source=mark["source"]
        )
        for student_id, mark in (row.marks or {}).items()
    }
    return ActiveSession(
        sessionId=row.id,
        classId=row.klass_id,
        startedAt=iso_z(row.started_at),
        attendance={student_id: mark.status for student_id, mark in marks.items()},
        marks=marks,
        checkIn=window_shown(Window.from_row(row)),
    )


def window_shown(window: Window | None, now: datetime | None = None) -> CheckInWindow | None:
    """An open window as GET /attendance/active shows it (no secret); None if none is open."""
    if window is None or not window.is_open(now or datetime.now(tz=UTC)):
        return None
    return CheckInWindow(
        openedAt=iso_z(window.opened_at),
        closesAt=iso_z(window.closes_at),
        rotateSeconds=window.rotate_seconds,
        lateAfterMinutes=window.late_after_minutes,
    )


def teacher_window(teacher_id: str) -> Window | None:
    """The check-in window of the teacher's live session (open, or past its end and not yet closed), or None."""
    rows = live_sessions().filter(teacher_id=teacher_id, checkin_closes_at__isnull=False).order_by("-started_at")
    row = rows.defer("marks").first()
    return None if row is None else Window.from_row(row)


def checkin_session(sessions: list[Session], class_id: str | None) -> Session:
    """The session a student's CHECK_IN is for, among the live sessions of their classes (most recent first):
    the class's when named (NotFound without one); else the most recent with an open window, or the most
    recent (whose closed window then answers "Check-in is not open")."""
    if class_id is not None:
        sessions = [s for s in sessions if s.class_id == class_id]
        if not sessions:
            raise NotFound(messages.NO_SESSION)
        return sessions[0]
    now = datetime.now(tz=UTC)
    with_window = [s for s in sessions if s.window is not None and s.window.is_open(now)]
    return (with_window or sessions)[0]


def checkin_state(class_id: str, student: User) -> CheckInState:
    """GET /class/:id/check-in: whether the class's live session has an open window (enrolled students)."""
    klass = classes.enrolled_class(class_id, student)
    row = live_sessions().filter(klass_id=klass.id).order_by("-started_at").defer("marks").first()
    shown = window_shown(None if row is None else Window.from_row(row))
    return CheckInState(classId=klass.id, open=shown is not None, closesAt=None if shown is None else shown.closesAt)


def student_sessions(class_ids: Iterable[str]) -> list[Session]:
    """Live sessions of the classes a student is enrolled in, most recently started first. Every MY_ATTENDANCE
    asks it: compiled once (common/prepared.py)."""
    class_ids = list(class_ids)
    if not class_ids:
        return []
    return [Session.from_row(row) for row in _live_in_classes(class_ids, live_cutoff())]


_live_in_classes = PreparedInstances(
    AttendanceSession,
    lambda class_ids, cutoff: live_sessions(cutoff).filter(klass_id__in=class_ids).order_by("-started_at"),
)


def my_live_status(sessions: list[Session], student_id: str, class_id: str | None) -> str:
    if class_id is not None:
        sessions = [s for s in sessions if s.class_id == class_id]
    if not sessions:
        raise NotFound(messages.NO_SESSION)
    return sessions[0].attendance.get(student_id, messages.NOT_YET_UPDATED)


def check_enrolled(session: Session, student_id: str) -> None:
    if not (is_object_id(student_id) and classes.is_enrolled(session.class_id, student_id)):
        raise NotFound(messages.STUDENT_NOT_FOUND)


def today_summary(session: Session) -> Summary:
    """TODAY_SUMMARY: the marks of the students enrolled now, those DONE would persist (one query)."""
    return session.counts(set(classes.student_ids(session.class_id)))


def my_persisted_status(class_id: str, student: User) -> PersistedStatus:
    """The student's status in the class's most recent persisted session, or None."""
    klass = classes.enrolled_class(class_id, student)
    found = _latest_status(klass.id, persisted_session_ids(klass.id), student.id)
    return PersistedStatus(classId=klass.id, status=Status(found[0]) if found else None)


# Every student opening a class asks it: compiled once (common/prepared.py).
_latest_status = PreparedQuery(
    Attendance,
    lambda class_id, session_ids, student_id: Attendance.objects.counted_among(class_id, session_ids)
    .filter(student_id=student_id)
    .order_by("-started_at")
    .values_list("status", flat=True)[:1],
)


def session_state(session_id: str) -> str | None:
    return AttendanceSession.objects.filter(pk=session_id).values_list("state", flat=True).first()


def persisted_summary(session_id: str, by_claim: str | None = None) -> Summary | None:
    """The summary of a persisted session, from its records; None if the session is not persisted (or, with
    `by_claim`, was not persisted by the DONE attempt that holds that token)."""
    persisted = AttendanceSession.objects.persisted().filter(pk=session_id)
    if by_claim is not None:
        persisted = persisted.filter(claim=by_claim)
    if not persisted.exists():
        return None
    counts = dict(
        Attendance.objects.filter(session_id=session_id)
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return count_statuses(Counter(counts).elements())


Participant = tuple[User, set[str]]


# A burst's reads, compiled once per number of users (common/prepared.py; the ORM's past MAX_LIST).
_classes_taught_by = PreparedQuery(
    Class, lambda teacher_ids: Class.objects.filter(teacher_id__in=teacher_ids).values_list("teacher_id", "id")
)
_enrolments_of = PreparedQuery(
    Enrollment,
    lambda student_ids: Enrollment.objects.filter(student_id__in=student_ids).values_list("student_id", "klass_id"),
)


def connect_participants(claims: list[dict[str, Any]]) -> list[Participant | None]:
    """Each connecting socket's user and the classes it takes part in (None: the token's user is gone), for a
    burst of connects at once (live.participants): three queries, whatever their number — the active users,
    the classes the teachers among them teach, the students' enrolments."""
    users = {user.id: user for user in active_users(claims)}
    classes_of: dict[str, set[str]] = {user_id: set() for user_id in users}
    teachers = [pk for pk, user in users.items() if user.role == Role.TEACHER]
    students = [pk for pk, user in users.items() if user.role != Role.TEACHER]
    if teachers:
        for teacher_id, class_id in _classes_taught_by(teachers):
            classes_of[teacher_id].add(class_id)
    if students:
        for student_id, class_id in _enrolments_of(students):
            classes_of[student_id].add(class_id)
    # Each socket gets its own set: a consumer changes its class ids as notices arrive.
    found: list[Participant | None] = []
    for c in claims:
        user = users.get(c["userId"])
        found.append(None if user is None else (user, set(classes_of[user.id])))
    return found
