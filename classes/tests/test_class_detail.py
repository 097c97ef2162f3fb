"""GET /class/:id, in-process."""

import pytest

from classes.models import Enrollment
from tests.support import (
    CLASS_NOT_FOUND,
    MALFORMED_IDS,
    METHOD_NOT_ALLOWED,
    MISSING_ID,
    NOT_CLASS_TEACHER,
    NOT_FOUND,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
    auth,
    count_queries,
    make_class,
    make_user,
    make_users,
)

pytestmark = pytest.mark.django_db


def detail(client, class_id, user=None):
    return client.get(f"/class/{class_id}", headers=auth(user))


def member(user):
    return {"_id": user.id, "name": user.name, "email": user.email}


def test_owning_teacher_gets_class_with_students_populated(client, teacher, student):
    second = make_user("student", name="Second")
    klass = make_class(teacher, [student, second], name="Maths 101")

    data = assert_ok(detail(client, klass.id, teacher))

    assert data == {
        "_id": klass.id,
        "className": "Maths 101",
        "teacherId": teacher.id,
        "students": [member(student), member(second)],
    }


def test_class_without_students(client, teacher):
    klass = make_class(teacher)
    assert assert_ok(detail(client, klass.id, teacher))["students"] == []


def test_enrolled_student_gets_class(client, teacher, student):
    klass = make_class(teacher, [student], name="Maths 101")
    assert assert_ok(detail(client, klass.id, student))["students"] == [member(student)]


def test_other_teacher_is_403(client, teacher, other_teacher, student):
    klass = make_class(teacher, [student])
    assert_error(detail(client, klass.id, other_teacher), 403, NOT_CLASS_TEACHER)


def test_student_not_enrolled_is_403(client, teacher, student):
    klass = make_class(teacher, [make_user("student")])
    assert_error(detail(client, klass.id, student), 403, NOT_CLASS_TEACHER)


def test_student_removed_from_class_is_403(client, teacher, student):
    klass = make_class(teacher, [student])
    assert_ok(detail(client, klass.id, student))
    Enrollment.objects.filter(klass=klass, student=student).delete()
    assert_error(detail(client, klass.id, student), 403, NOT_CLASS_TEACHER)


def test_without_token_is_401(client, teacher):
    assert_error(detail(client, make_class(teacher).id), 401, UNAUTHORIZED)
    assert_error(detail(client, MISSING_ID), 401, UNAUTHORIZED)


@pytest.mark.parametrize("who", ["teacher", "student"])
def test_unknown_class_is_404(client, request, who):
    assert_error(detail(client, MISSING_ID, request.getfixturevalue(who)), 404, CLASS_NOT_FOUND)


@pytest.mark.parametrize("class_id", MALFORMED_IDS)
def test_malformed_class_id_is_404(client, teacher, class_id):
    assert_error(detail(client, class_id, teacher), 404, CLASS_NOT_FOUND)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_wrong_method_is_405_before_auth(client, method):
    assert_error(getattr(client, method)("/class/x"), 405, METHOD_NOT_ALLOWED)


def test_trailing_slash_is_404(client, teacher):
    klass = make_class(teacher)
    assert_error(client.get(f"/class/{klass.id}/", headers=auth(teacher)), 404, NOT_FOUND)


@pytest.mark.parametrize("viewer", ["teacher", "student"])
def test_query_count_does_not_grow_with_students(client, teacher, student, viewer):
    klass = make_class(teacher, [student])
    headers = auth(teacher if viewer == "teacher" else student)
    one = count_queries(lambda: client.get(f"/class/{klass.id}", headers=headers))
    for other in make_users("student", 29):
        Enrollment.objects.create(klass=klass, student=other)
    assert len(assert_ok(client.get(f"/class/{klass.id}", headers=headers))["students"]) == 30
    assert count_queries(lambda: client.get(f"/class/{klass.id}", headers=headers)) == one
