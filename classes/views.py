"""Classes: create one, enrol students, read one with its students."""

from django.http import HttpRequest

from accounts import auth
from accounts.models import User
from classes import services
from classes.schemas import AddStudentBody, ClassDetail, ClassListItem, ClassSummary, CreateClassBody
from common import messages
from common.api import endpoint
from common.errors import Forbidden, NotFound


@endpoint("POST", auth=auth.teacher, body=CreateClassBody, response=ClassSummary, status=201)
def create_class(request: HttpRequest, user: User, body: CreateClassBody) -> ClassSummary:
    """Create a class taught by the caller."""
    return services.class_summary(services.create_class(user, body.className))


@endpoint(
    "POST",
    auth=auth.teacher,
    body=AddStudentBody,
    response=ClassSummary,
    errors=(
        NotFound(messages.CLASS_NOT_FOUND),
        Forbidden(messages.NOT_CLASS_TEACHER),
        NotFound(messages.STUDENT_NOT_FOUND),
    ),
)
def add_student(request: HttpRequest, user: User, class_id: str, body: AddStudentBody) -> ClassSummary:
    """Enrol a student in a class the caller teaches; enrolling twice keeps one entry."""
    klass = services.owned_class(class_id, user)
    return services.class_summary(services.add_student(klass, body.studentId))


@endpoint(
    "GET",
    auth=auth.any_user,
    response=ClassDetail,
    errors=(NotFound(messages.CLASS_NOT_FOUND), Forbidden(messages.NOT_CLASS_TEACHER)),
)
def class_detail(request: HttpRequest, user: User, class_id: str) -> ClassDetail:
    """A class with its students, for its teacher or an enrolled student."""
    return services.class_detail(class_id, user)


@endpoint("GET", auth=auth.any_user, response=list[ClassListItem])
def my_classes(request: HttpRequest, user: User) -> list[ClassListItem]:
    """The caller's classes: a teacher's own (newest first), a student's enrolled (latest enrolment first)."""
    return services.classes_of(user)
