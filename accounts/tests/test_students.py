"""GET /students, in-process and over the wire (the `site` fixture); query counts in-process."""

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
    make_users,
)

# The in-process tests need the database; the `site` scenarios run both ways.
pytestmark = pytest.mark.django_db


def test_students_lists_only_students_with_id_name_email(site):
    teacher, other_teacher = site.person("teacher"), site.person("teacher")
    student, second = site.person("student"), site.person("student", "Second Student")

    data = assert_ok(site.get("/students", teacher))

    mine = [{"_id": s.id, "name": s.name, "email": s.email} for s in (student, second)]
    assert all(item in data for item in mine), data
    assert all(set(item) == {"_id", "name", "email"} for item in data)
    assert not {teacher.id, other_teacher.id} & {item["_id"] for item in data}
    if site.mode == "local":  # the wire server is shared: others' students are listed too
        assert sorted(data, key=lambda item: item["_id"]) == sorted(mine, key=lambda item: item["_id"])


def test_students_empty_list(client, teacher):
    assert assert_ok(client.get("/students", headers=auth(teacher))) == []


def test_students_without_token_is_401(site):
    assert_error(site.get("/students"), 401, UNAUTHORIZED)


def test_students_for_student_is_403(site):
    assert_error(site.get("/students", site.person("student")), 403, TEACHER_REQUIRED)


def test_students_role_comes_from_the_user_not_the_token(client, student):
    token = forge_token(settings.JWT_SECRET, user_id=student.id, role="teacher")
    assert_error(client.get("/students", headers=auth(token)), 403, TEACHER_REQUIRED)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_students_wrong_method_is_405_before_auth(site, method):
    assert_error(site.request(method, "/students"), 405, METHOD_NOT_ALLOWED)


def test_students_query_count_does_not_grow_with_students(client, teacher):
    headers = auth(teacher)
    make_users("student", 1)
    one = count_queries(lambda: client.get("/students", headers=headers))
    make_users("student", 29)
    assert len(assert_ok(client.get("/students", headers=headers))) == 30
    assert count_queries(lambda: client.get("/students", headers=headers)) == one
