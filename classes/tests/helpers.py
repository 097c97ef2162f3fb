"""Classes made in-process for the classes tests."""

from __future__ import annotations

from collections.abc import Iterable

from accounts.models import User
from classes.models import Class, Enrollment


def make_class(teacher: User, name: str = "Maths 101", students: Iterable[User] = ()) -> Class:
    klass = Class.objects.create(class_name=name, teacher=teacher)
    for student in students:
        Enrollment.objects.create(klass=klass, student=student)
    return klass


def enrolled_ids(klass: Class) -> list[str]:
    return list(Enrollment.objects.filter(klass=klass).order_by("id").values_list("student_id", flat=True))
