"""Attendance sessions over HTTP: start one (the live part is the WebSocket), a student's last status."""

from django.http import HttpRequest

from accounts import auth
from accounts.models import User
from attendance_site import messages
from attendance_site.api import endpoint
from attendance_site.errors import Forbidden, NotFound
from live import services
from live.schemas import PersistedStatus, StartAttendanceBody, StartedSession


@endpoint(
    "POST",
    auth=auth.teacher,
    body=StartAttendanceBody,
    response=StartedSession,
    errors=(NotFound(messages.CLASS_NOT_FOUND), Forbidden(messages.NOT_CLASS_TEACHER)),
)
def start_attendance(request: HttpRequest, user: User, body: StartAttendanceBody) -> StartedSession:
    """Start the live session of a class the caller teaches, replacing the caller's earlier one (empty marks)."""
    session = services.start_session(user, body.classId)
    return StartedSession(classId=session.class_id, startedAt=session.started_at)


@endpoint(
    "GET",
    auth=auth.student,
    response=PersistedStatus,
    errors=(NotFound(messages.CLASS_NOT_FOUND), Forbidden(messages.NOT_ENROLLED)),
)
def my_attendance(request: HttpRequest, user: User, class_id: str) -> PersistedStatus:
    """The caller's status in the class's most recent persisted session (null before any)."""
    return services.my_persisted_status(class_id, user)
