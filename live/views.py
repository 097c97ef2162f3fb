"""Attendance over HTTP: start a session (the live part is the WebSocket), a student's last status, and
the history of persisted sessions: lists, details, reports and their CSV."""

from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse

from accounts import auth
from accounts.models import User
from classes import services as classes
from common import messages
from common.api import WhileQuick, endpoint
from common.downloads import attachment
from common.errors import Forbidden, Invalid, NotFound, NotNow, TooManyRequests
from live import commands, history, selectors, workbook
from live.schemas import (
    ActiveSession,
    ChangeEntry,
    CheckedIn,
    CheckInBody,
    CheckInState,
    ClassReport,
    CorrectionBody,
    HistoryEntry,
    MySummary,
    PeriodQuery,
    PersistedStatus,
    SessionDetail,
    SessionRecord,
    SessionsQuery,
    SessionSummary,
    StartAttendanceBody,
    StartedSession,
    WorkbookQuery,
)


def period_of(query: PeriodQuery) -> history.Period:
    return history.Period(query.start, query.end)

OWNED_CLASS_ERRORS = (NotFound(messages.CLASS_NOT_FOUND), Forbidden(messages.NOT_CLASS_TEACHER))
ENROLLED_CLASS_ERRORS = (NotFound(messages.CLASS_NOT_FOUND), Forbidden(messages.NOT_ENROLLED))


@endpoint(
    "POST",
    auth=auth.teacher,
    body=StartAttendanceBody,
    response=StartedSession,
    errors=OWNED_CLASS_ERRORS,
)
def start_attendance(request: HttpRequest, user: User, body: StartAttendanceBody) -> StartedSession:
    """Start the live session of a class the caller teaches, replacing the caller's earlier one (empty marks)."""
    session = commands.start_session(user, body.classId)
    return StartedSession(classId=session.class_id, startedAt=session.started_at)


@endpoint(
    "GET",
    auth=auth.student,
    response=PersistedStatus,
    errors=ENROLLED_CLASS_ERRORS,
    light=True,
)
def my_attendance(request: HttpRequest, user: User, class_id: str) -> PersistedStatus:
    """The caller's status in the class's most recent persisted session (null before any)."""
    return selectors.my_persisted_status(class_id, user)


@endpoint("GET", auth=auth.teacher, response=ActiveSession | None)
def active_attendance(request: HttpRequest, user: User) -> ActiveSession | None:
    """The caller's live session with its marks so far and its open check-in window (to pick it up again after a
    reload), or null."""
    return selectors.live_session(user)


@endpoint(
    "POST",
    auth=auth.student,
    body=CheckInBody,
    response=CheckedIn,
    errors=(
        Forbidden(messages.NOT_ENROLLED),
        NotFound(messages.NO_SESSION),
        NotNow(messages.CHECKIN_NOT_OPEN),
        TooManyRequests(messages.TOO_MANY_ATTEMPTS),
        Invalid(messages.INVALID_CODE),
        NotNow(messages.ALREADY_MARKED),
    ),
)
def check_in(request: HttpRequest, user: User, body: CheckInBody) -> CheckedIn:
    """Check in to a class's live session with the code its teacher's screen shows (the current one or the one
    before it): present, or late once the window's lateAfterMinutes have passed; broadcast to the session's
    participants as ATTENDANCE_MARKED.

    A class the caller is not enrolled in (or none by that id) is 403. After 5 wrong codes in one window (the
    socket's CHECK_IN and this route count together) every check-in of the caller in it is 429, with
    `Retry-After` until the window closes (at most 900). A mark already made is never overwritten (409)."""
    status = commands.check_in_to_class(user, body.classId, body.code)
    return CheckedIn(classId=body.classId, status=status)


@endpoint("GET", auth=auth.student, response=CheckInState, errors=ENROLLED_CLASS_ERRORS)
def checkin_state(request: HttpRequest, user: User, class_id: str) -> CheckInState:
    """Whether the class's live session has an open self check-in window, and until when (never its code)."""
    return selectors.checkin_state(class_id, user)


# --- history and reports: persisted sessions ------------------------------------------------------------


@endpoint("GET", auth=auth.teacher, query=SessionsQuery, response=list[SessionSummary], errors=OWNED_CLASS_ERRORS)
def class_sessions(request: HttpRequest, user: User, class_id: str, query: SessionsQuery) -> list[SessionSummary]:
    """The class's persisted sessions with their counts, newest first, a page at a time.

    For the next page pass the last `startedAt` as `before`. `from` (inclusive) and `to` (exclusive) keep only the
    sessions started between them."""
    klass = classes.owned_class(class_id, user)
    return history.sessions_page(klass, query.limit, query.before, period_of(query))


@endpoint(
    "GET",
    auth=auth.teacher,
    response=SessionDetail,
    errors=(*OWNED_CLASS_ERRORS, NotFound(messages.SESSION_NOT_FOUND)),
    params={
        "session_id": "The session's `_id`, as GET /class/{class_id}/sessions lists it. A malformed id, an unknown "
        "one or another class's is answered as not found."
    },
)
def class_session(request: HttpRequest, user: User, class_id: str, session_id: str) -> SessionDetail:
    """One persisted session of the class with every student's record, by name."""
    klass = classes.owned_class(class_id, user)
    return history.session_detail(klass, session_id)


SESSION_ID = {
    "session_id": "The session's `_id`, as GET /class/{class_id}/sessions lists it. A malformed id, an unknown "
    "one or another class's is answered as not found."
}


@endpoint(
    "PATCH",
    auth=auth.teacher,
    body=CorrectionBody,
    response=SessionRecord,
    errors=(*OWNED_CLASS_ERRORS, NotFound(messages.SESSION_NOT_FOUND), NotFound(messages.STUDENT_NOT_FOUND)),
    params={
        **SESSION_ID,
        "student_id": "The student whose record to correct: not found without a record in that session.",
    },
)
def correct_record(
    request: HttpRequest, user: User, class_id: str, session_id: str, student_id: str, body: CorrectionBody
) -> SessionRecord:
    """Correct a student's record of a persisted session (source "correction"; logged). My-attendance, history,
    reports and the CSV show it at once."""
    return commands.correct_record(user, class_id, session_id, student_id, body.status, body.remark)


@endpoint(
    "GET",
    auth=auth.teacher,
    response=list[ChangeEntry],
    errors=(*OWNED_CLASS_ERRORS, NotFound(messages.SESSION_NOT_FOUND)),
    params=SESSION_ID,
)
def session_changes(request: HttpRequest, user: User, class_id: str, session_id: str) -> list[ChangeEntry]:
    """Every change of a session of the class in the order made, live ones included (`status` null: a clear)."""
    klass = classes.owned_class(class_id, user)
    return history.session_changes(klass, session_id)


@endpoint(
    "GET",
    auth=auth.teacher,
    query=PeriodQuery,
    response=ClassReport,
    errors=OWNED_CLASS_ERRORS,
    light=WhileQuick(),  # a small class's report is a light read; a large one's keeps its thread
)
def class_report(request: HttpRequest, user: User, class_id: str, query: PeriodQuery) -> ClassReport:
    """Each student's counts, attendance rate, current run of unexcused absences and whether they are at risk
    (the class's minRate and maxConsecutiveAbsences), over the class's persisted sessions started in
    [`from`, `to`)."""
    klass = classes.owned_class(class_id, user)
    return history.class_report(klass, period_of(query))


CSV = "text/csv; charset=utf-8"


@endpoint("GET", auth=auth.teacher, query=PeriodQuery, response=str, media_type=CSV, errors=OWNED_CLASS_ERRORS)
def class_report_csv(request: HttpRequest, user: User, class_id: str, query: PeriodQuery) -> HttpResponse:
    """The report as a CSV file: one row per student, one column per persisted session (oldest first), only the
    sessions started in [`from`, `to`).

    Errors are the JSON envelope, as on every route."""
    klass = classes.owned_class(class_id, user)
    content = history.report_csv(klass, period_of(query)).encode("utf-8")
    return attachment(content, CSV, stem=klass.class_name, suffix="-attendance.csv", fallback="class")


@endpoint(
    "GET", auth=auth.teacher, query=WorkbookQuery, response=str, media_type=workbook.XLSX, errors=OWNED_CLASS_ERRORS
)
def class_report_xlsx(request: HttpRequest, user: User, class_id: str, query: WorkbookQuery) -> HttpResponse:
    """The report as an Excel workbook: sheet "Attendance" with the CSV's columns (session columns headed by their
    start in `tz`, the rate as a percentage), sheet "Sessions" with each session's start, end and counts; only the
    sessions started in [`from`, `to`).

    An unknown `tz` is 400. Errors are the JSON envelope, as on every route."""
    klass = classes.owned_class(class_id, user)
    content = workbook.report_xlsx(klass, ZoneInfo(query.tz), period_of(query))
    return attachment(content, workbook.XLSX, stem=klass.class_name, suffix="-attendance.xlsx", fallback="class")


@endpoint("GET", auth=auth.student, response=MySummary, errors=ENROLLED_CLASS_ERRORS, light=True)
def my_summary(request: HttpRequest, user: User, class_id: str) -> MySummary:
    """The caller's counts, rate and current run of unexcused absences over the class's persisted sessions, and
    whether that puts them at risk (the class's minRate and maxConsecutiveAbsences)."""
    klass = classes.enrolled_class(class_id, user)
    return history.my_summary(klass, user)


@endpoint("GET", auth=auth.student, response=list[HistoryEntry], errors=ENROLLED_CLASS_ERRORS, light=True)
def my_history(request: HttpRequest, user: User, class_id: str) -> list[HistoryEntry]:
    """The caller's status in each persisted session of the class, newest first."""
    klass = classes.enrolled_class(class_id, user)
    return history.my_history(klass, user)
