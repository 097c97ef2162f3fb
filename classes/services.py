"""Class rules: create, enrol, read. Query counts stay constant whatever the class size."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import Role, User
from attendance_site.api import ApiError
from attendance_site.fields import is_object_id
from classes.models import Class, Enrollment

CLASS_NOT_FOUND = "Class not found"
STUDENT_NOT_FOUND = "Student not found"
NOT_CLASS_TEACHER = "Forbidden, not class teacher"
NOT_ENROLLED = "Forbidden, not enrolled in class"


def student_ids(class_id: str) -> list[str]:
    """Enrolled students' ids, in enrolment order (one query)."""
    return list(Enrollment.objects.filter(klass_id=class_id).order_by("id").values_list("student_id", flat=True))


def is_enrolled(class_id: str, student_id: str) -> bool:
    return Enrollment.objects.filter(klass_id=class_id, student_id=student_id).exists()


def get_class(class_id: str) -> Class:
    """The class, or 404 — a malformed id is simply not found."""
    klass = Class.objects.filter(pk=class_id).first() if is_object_id(class_id) else None
    if klass is None:
        raise ApiError(404, CLASS_NOT_FOUND)
    return klass


def owned_class(class_id: str, teacher: User) -> Class:
    """404 before 403: existence first, then ownership."""
    klass = get_class(class_id)
    if klass.teacher_id != teacher.id:
        raise ApiError(403, NOT_CLASS_TEACHER)
    return klass


def class_summary(klass: Class) -> dict[str, Any]:
    return {
        "_id": klass.id,
        "className": klass.class_name,
        "teacherId": klass.teacher_id,
        "studentIds": student_ids(klass.id),
    }


def create_class(teacher: User, class_name: str) -> Class:
    return Class.objects.create(class_name=class_name, teacher=teacher)


def add_student(klass: Class, student_id: str) -> Class:
    """Enrol a student; enrolling twice keeps one entry."""
    if not (is_object_id(student_id) and User.objects.filter(pk=student_id, role=Role.STUDENT).exists()):
        raise ApiError(404, STUDENT_NOT_FOUND)
    if not is_enrolled(klass.id, student_id):
        try:
            with transaction.atomic():
                Enrollment.objects.create(klass=klass, student_id=student_id)
        except IntegrityError:
            pass  # enrolled concurrently by another request: still one entry
    return klass


def class_detail(class_id: str, user: User) -> dict[str, Any]:
    """The class with its students populated, for its teacher or an enrolled student."""
    klass = get_class(class_id)
    members = list(
        User.objects.filter(enrollments__klass_id=klass.id)
        .order_by("enrollments__id")
        .values_list("id", "name", "email")
    )
    if klass.teacher_id != user.id and not any(pk == user.id for pk, _, _ in members):
        raise ApiError(403, NOT_CLASS_TEACHER)
    return {
        "_id": klass.id,
        "className": klass.class_name,
        "teacherId": klass.teacher_id,
        "students": [{"_id": pk, "name": name, "email": email} for pk, name, email in members],
    }
