from django.http import HttpRequest, HttpResponse

from accounts import auth
from attendance_site.api import endpoint, ok
from live import services
from live.schemas import StartAttendanceBody


@endpoint("POST", auth=auth.teacher, body=StartAttendanceBody)
def start_attendance(request: HttpRequest, body: StartAttendanceBody) -> HttpResponse:
    session = services.start_session(request.api_user, body.classId)
    return ok({"classId": session.class_id, "startedAt": session.started_at})


@endpoint("GET", auth=auth.student)
def my_attendance(request: HttpRequest, class_id: str) -> HttpResponse:
    return ok(services.my_persisted_status(class_id, request.api_user))
