"""POST /class, in-process."""

import pytest

from classes.models import Class
from tests.support import (
    BIG_BODY,
    DEEP_BODY,
    INVALID_SCHEMA,
    METHOD_NOT_ALLOWED,
    OBJECT_ID,
    PAYLOAD_TOO_LARGE,
    TEACHER_REQUIRED,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
    auth,
    post_json,
    post_raw,
)

pytestmark = pytest.mark.django_db


def create(client, body, user=None):
    return post_json(client, "/class", body, auth(user))


def test_teacher_creates_class(client, teacher):
    data = assert_ok(create(client, {"className": "Maths 101"}, teacher), 201)

    assert set(data) == {"_id", "className", "teacherId", "studentIds"}
    assert OBJECT_ID.match(data["_id"])
    assert (data["className"], data["teacherId"], data["studentIds"]) == ("Maths 101", teacher.id, [])
    klass = Class.objects.get(pk=data["_id"])
    assert (klass.class_name, klass.teacher_id) == ("Maths 101", teacher.id)


def test_class_name_is_trimmed(client, teacher):
    assert assert_ok(create(client, {"className": "  Physics  "}, teacher), 201)["className"] == "Physics"


def test_unknown_fields_are_ignored(client, teacher, other_teacher, student):
    body = {"className": "Chem", "teacherId": other_teacher.id, "studentIds": [student.id], "_id": "x"}
    data = assert_ok(create(client, body, teacher), 201)
    assert (data["teacherId"], data["studentIds"]) == (teacher.id, [])
    assert data["_id"] != "x"


def test_body_parsed_with_text_plain(client, teacher):
    response = post_raw(client, "/class", '{"className": "Art"}', content_type="text/plain", headers=auth(teacher))
    assert assert_ok(response, 201)["className"] == "Art"


def test_without_token_is_401_even_with_bad_body(client):
    assert_error(create(client, {"className": "Maths"}), 401, UNAUTHORIZED)
    assert_error(post_raw(client, "/class", b"nope"), 401, UNAUTHORIZED)


def test_student_is_403_before_body_check(client, student):
    assert_error(create(client, {"className": "Maths"}, student), 403, TEACHER_REQUIRED)
    assert_error(create(client, {"className": ""}, student), 403, TEACHER_REQUIRED)
    assert_error(post_raw(client, "/class", b"nope", headers=auth(student)), 403, TEACHER_REQUIRED)
    assert not Class.objects.exists()


@pytest.mark.parametrize(
    "body",
    [{"className": ""}, {"className": "   "}, {"className": 5}, {"className": None}, {"className": ["x"]}, {}],
    ids=["empty", "blank", "int", "null", "list", "missing"],
)
def test_invalid_body_is_400(client, teacher, body):
    assert_error(create(client, body, teacher), 400, INVALID_SCHEMA)
    assert not Class.objects.exists()


@pytest.mark.parametrize("raw", [b"", b"nope", b"[]", b'"Maths"'], ids=["empty", "garbage", "array", "string"])
def test_body_not_a_json_object_is_400(client, teacher, raw):
    assert_error(post_raw(client, "/class", raw, headers=auth(teacher)), 400, INVALID_SCHEMA)


def test_body_over_1_mib_is_413(client, teacher):
    assert_error(post_raw(client, "/class", BIG_BODY, headers=auth(teacher)), 413, PAYLOAD_TOO_LARGE)


def test_deeply_nested_json_is_400(client, teacher):
    assert_error(post_raw(client, "/class", DEEP_BODY, headers=auth(teacher)), 400, INVALID_SCHEMA)


def test_class_name_longer_than_column_is_400(client, teacher):
    assert_error(create(client, {"className": "x" * 201}, teacher), 400, INVALID_SCHEMA)


def test_class_name_with_nul_character_is_400(client, teacher):
    assert_error(create(client, {"className": "Maths\u0000101"}, teacher), 400, INVALID_SCHEMA)


def test_class_name_of_200_chars_is_accepted(client, teacher):
    assert assert_ok(create(client, {"className": "x" * 200}, teacher), 201)["className"] == "x" * 200


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_wrong_method_is_405_before_auth(client, method):
    assert_error(getattr(client, method)("/class"), 405, METHOD_NOT_ALLOWED)
