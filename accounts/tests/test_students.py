"""GET /students, in-process."""

import pytest
from django.conf import settings

from tests.support import (
    METHOD_NOT_ALLOWED,
    TEACHER_REQUIRED,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
    auth,
    count_queries,
    forge_token,
    make_user,
    make_users,
)

pytestmark = pytest.mark.django_db


def test_students_lists_only_students_with_id_name_email(client, teacher, other_teacher, student):
    second = make_user("student", name="Second Student")

    data = assert_ok(client.get("/students", headers=auth(teacher)))

    assert sorted(data, key=lambda item: item["_id"]) == sorted(
        [{"_id": s.id, "name": s.name, "email": s.email} for s in (student, second)], key=lambda item: item["_id"]
    )


def test_students_empty_list(client, teacher):
    assert assert_ok(client.get("/students", headers=auth(teacher))) == []


def test_students_without_token_is_401(client):
    assert_error(client.get("/students"), 401, UNAUTHORIZED)


def test_students_for_student_is_403(client, student):
    assert_error(client.get("/students", headers=auth(student)), 403, TEACHER_REQUIRED)


def test_students_role_comes_from_the_user_not_the_token(client, student):
    token = forge_token(settings.JWT_SECRET, user_id=student.id, role="teacher")
    assert_error(client.get("/students", headers=auth(token)), 403, TEACHER_REQUIRED)


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_students_wrong_method_is_405_before_auth(client, method):
    assert_error(getattr(client, method)("/students"), 405, METHOD_NOT_ALLOWED)


def test_students_query_count_does_not_grow_with_students(client, teacher):
    headers = auth(teacher)
    make_users("student", 1)
    one = count_queries(lambda: client.get("/students", headers=headers))
    make_users("student", 29)
    assert len(assert_ok(client.get("/students", headers=headers))) == 30
    assert count_queries(lambda: client.get("/students", headers=headers)) == one
