from django.http import HttpRequest, HttpResponse

from accounts import auth
from attendance_site.api import endpoint, ok
from classes import services
from classes.schemas import AddStudentBody, CreateClassBody
from live.notify import notify_membership


@endpoint("POST", auth=auth.teacher, body=CreateClassBody)
def create_class(request: HttpRequest, body: CreateClassBody) -> HttpResponse:
    klass = services.create_class(request.api_user, body.className)
    notify_membership(request.api_user.id, klass.id)
    return ok(services.class_summary(klass), status=201)


@endpoint("POST", auth=auth.teacher, body=AddStudentBody)
def add_student(request: HttpRequest, class_id: str, body: AddStudentBody) -> HttpResponse:
    klass = services.owned_class(class_id, request.api_user)
    services.add_student(klass, body.studentId)
    notify_membership(body.studentId, klass.id)
    return ok(services.class_summary(klass))


@endpoint("GET", auth=auth.any_user)
def class_detail(request: HttpRequest, class_id: str) -> HttpResponse:
    return ok(services.class_detail(class_id, request.api_user))
