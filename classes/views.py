"""Classes: create one, enrol students, read one with its students."""

from django.http import HttpRequest

from accounts import auth
from accounts.models import User
from classes import services
from classes.schemas import (
    AddStudentBody,
    ClassDetail,
    ClassListItem,
    ClassSummary,
    CreateClassBody,
    RosterBody,
    RosterResult,
    UpdateClassBody,
)
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
    light=True,
)
def class_detail(request: HttpRequest, user: User, class_id: str) -> ClassDetail:
    """A class with its students, for its teacher or an enrolled student."""
    return services.class_detail(class_id, user)


OWNED_CLASS_ERRORS = (NotFound(messages.CLASS_NOT_FOUND), Forbidden(messages.NOT_CLASS_TEACHER))


@endpoint("PATCH", auth=auth.teacher, body=UpdateClassBody, response=ClassSummary, errors=OWNED_CLASS_ERRORS)
def update_class(request: HttpRequest, user: User, class_id: str, body: UpdateClassBody) -> ClassSummary:
    """Rename a class the caller teaches, or change when its students are at risk (minRate,
    maxConsecutiveAbsences); fields left out stay as they are."""
    klass = services.owned_class(class_id, user)
    services.update_class(klass, body.className, body.minRate, body.maxConsecutiveAbsences)
    return services.class_summary(klass)


@endpoint("POST", auth=auth.teacher, body=RosterBody, response=RosterResult, errors=OWNED_CLASS_ERRORS)
def enrol_students(request: HttpRequest, user: User, class_id: str, body: RosterBody) -> RosterResult:
    """Enrol existing student accounts by email (at most 1,000 at once), e.g. a school's roster.

    Addresses are compared as log-in compares them (trimmed, case ignored). The answer sorts them: `added` and
    `alreadyEnrolled` as student ids, `notFound` (no account) and `notStudents` (a teacher's account) as the
    addresses, each in the order given."""
    klass = services.owned_class(class_id, user)
    return services.enrol_by_email(klass, body.emails)


@endpoint(
    "DELETE",
    auth=auth.teacher,
    response=ClassSummary,
    errors=(*OWNED_CLASS_ERRORS, NotFound(messages.STUDENT_NOT_FOUND)),
    params={"student_id": "The enrolled student to remove: not found when not enrolled in the class."},
)
def remove_student(request: HttpRequest, user: User, class_id: str, student_id: str) -> ClassSummary:
    """Remove a student from a class the caller teaches. Their records stay: reports and the CSV still show them."""
    klass = services.owned_class(class_id, user)
    return services.class_summary(services.remove_student(klass, student_id))


@endpoint("GET", auth=auth.any_user, response=list[ClassListItem], light=True)
def my_classes(request: HttpRequest, user: User) -> list[ClassListItem]:
    """The caller's classes: a teacher's own (newest first), a student's enrolled (latest enrolment first)."""
    return services.classes_of(user)
