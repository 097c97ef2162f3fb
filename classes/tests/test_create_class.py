"""POST /class, in-process and over the wire (the `site` fixture); what only the database shows, in-process."""

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
)


def create(site, body, who=None):
    return site.post("/class", body, who)


def test_teacher_creates_class(site):
    teacher = site.person("teacher")
    data = assert_ok(create(site, {"className": "Maths 101"}, teacher), 201)

    assert set(data) == {"_id", "className", "teacherId", "studentIds", "minRate", "maxConsecutiveAbsences"}
    assert (data["minRate"], data["maxConsecutiveAbsences"]) == (0.8, 3)  # the at-risk defaults
    assert OBJECT_ID.match(data["_id"])
    assert (data["className"], data["teacherId"], data["studentIds"]) == ("Maths 101", teacher.id, [])
    if site.mode == "local":
        klass = Class.objects.get(pk=data["_id"])
        assert (klass.class_name, klass.teacher_id) == ("Maths 101", teacher.id)


def test_class_name_is_trimmed(site):
    assert assert_ok(create(site, {"className": "  Physics  "}, site.person("teacher")), 201)["className"] == "Physics"


def test_unknown_fields_are_ignored(site):
    teacher, other_teacher, student = site.person("teacher"), site.person("teacher"), site.person("student")
    body = {"className": "Chem", "teacherId": other_teacher.id, "studentIds": [student.id], "_id": "x"}
    data = assert_ok(create(site, body, teacher), 201)
    assert (data["teacherId"], data["studentIds"]) == (teacher.id, [])
    assert data["_id"] != "x"


def test_body_parsed_with_text_plain(site):
    response = site.post("/class", raw='{"className": "Art"}', content_type="text/plain", who=site.person("teacher"))
    assert assert_ok(response, 201)["className"] == "Art"


def test_without_token_is_401_even_with_bad_body(site):
    assert_error(create(site, {"className": "Maths"}), 401, UNAUTHORIZED)
    assert_error(site.post("/class", raw=b"nope"), 401, UNAUTHORIZED)


def test_student_is_403_before_body_check(site):
    student = site.person("student")
    assert_error(create(site, {"className": "Maths"}, student), 403, TEACHER_REQUIRED)
    assert_error(create(site, {"className": ""}, student), 403, TEACHER_REQUIRED)
    assert_error(create(site, {}, student), 403, TEACHER_REQUIRED)
    assert_error(site.post("/class", raw=b"nope", who=student), 403, TEACHER_REQUIRED)
    if site.mode == "local":
        assert not Class.objects.exists()


@pytest.mark.parametrize(
    "body",
    [{"className": ""}, {"className": "   "}, {"className": 5}, {"className": None}, {"className": ["x"]}, {}],
    ids=["empty", "blank", "int", "null", "list", "missing"],
)
def test_invalid_body_is_400(site, body):
    assert_error(create(site, body, site.person("teacher")), 400, INVALID_SCHEMA)
    if site.mode == "local":
        assert not Class.objects.exists()


@pytest.mark.parametrize("raw", [b"", b"nope", b"[]", b'"Maths"'], ids=["empty", "garbage", "array", "string"])
def test_body_not_a_json_object_is_400(site, raw):
    assert_error(site.post("/class", raw=raw, who=site.person("teacher")), 400, INVALID_SCHEMA)


def test_body_over_1_mib_is_413(site):
    assert_error(site.post("/class", raw=BIG_BODY, who=site.person("teacher")), 413, PAYLOAD_TOO_LARGE)


def test_deeply_nested_json_is_400(site):
    assert_error(site.post("/class", raw=DEEP_BODY, who=site.person("teacher")), 400, INVALID_SCHEMA)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_method_is_405_before_auth(site, method):
    assert_error(site.request(method, "/class"), 405, METHOD_NOT_ALLOWED)


# --- in-process only: the column's limits ------------------------------------------------------------------
@pytest.mark.django_db
def test_class_name_longer_than_column_is_400(client, teacher):
    assert_error(post_json(client, "/class", {"className": "x" * 201}, auth(teacher)), 400, INVALID_SCHEMA)


@pytest.mark.django_db
def test_class_name_with_nul_character_is_400(client, teacher):
    assert_error(post_json(client, "/class", {"className": "Maths\u0000101"}, auth(teacher)), 400, INVALID_SCHEMA)


@pytest.mark.django_db
def test_class_name_of_200_chars_is_accepted(client, teacher):
    data = assert_ok(post_json(client, "/class", {"className": "x" * 200}, auth(teacher)), 201)
    assert data["className"] == "x" * 200
