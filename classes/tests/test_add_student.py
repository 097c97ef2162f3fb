"""POST /class/:id/add-student, in-process, with the contract's check order:
401 → 403 role → 400 schema → 404 "Class not found" → 403 "Forbidden, not class teacher" → 404 "Student not found".
"""

import pytest

from tests.support import (
    BIG_BODY,
    CLASS_NOT_FOUND,
    DEEP_BODY,
    INVALID_SCHEMA,
    MALFORMED_IDS,
    METHOD_NOT_ALLOWED,
    MISSING_ID,
    NOT_CLASS_TEACHER,
    PAYLOAD_TOO_LARGE,
    STUDENT_NOT_FOUND,
    TEACHER_REQUIRED,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
    auth,
    enrolled_ids,
    make_class,
    make_user,
    post_json,
    post_raw,
)

pytestmark = pytest.mark.django_db


def add(client, class_id, body, user=None):
    return post_json(client, f"/class/{class_id}/add-student", body, auth(user))


@pytest.fixture
def klass(teacher):
    return make_class(teacher, name="Maths 101")


def test_teacher_adds_student(client, teacher, student, klass):
    data = assert_ok(add(client, klass.id, {"studentId": student.id}, teacher))

    assert data == {"_id": klass.id, "className": "Maths 101", "teacherId": teacher.id, "studentIds": [student.id]}
    assert enrolled_ids(klass) == [student.id]


def test_adding_keeps_earlier_students_in_order(client, teacher, student, klass):
    second = make_user("student")
    assert_ok(add(client, klass.id, {"studentId": student.id}, teacher))
    data = assert_ok(add(client, klass.id, {"studentId": second.id}, teacher))
    assert data["studentIds"] == [student.id, second.id]


def test_adding_twice_keeps_one_entry(client, teacher, student, klass):
    assert_ok(add(client, klass.id, {"studentId": student.id}, teacher))
    data = assert_ok(add(client, klass.id, {"studentId": student.id}, teacher))
    assert data["studentIds"] == [student.id]
    assert enrolled_ids(klass) == [student.id]


def test_student_id_is_trimmed_and_unknown_fields_ignored(client, teacher, student, klass):
    data = assert_ok(add(client, klass.id, {"studentId": f"  {student.id} ", "classId": "x"}, teacher))
    assert data["studentIds"] == [student.id]


def test_body_parsed_with_text_plain(client, teacher, student, klass):
    raw = f'{{"studentId": "{student.id}"}}'
    response = post_raw(client, f"/class/{klass.id}/add-student", raw, content_type="text/plain", headers=auth(teacher))
    assert assert_ok(response)["studentIds"] == [student.id]


# --- errors, one step of the order at a time ---------------------------------------------------
def test_without_token_is_401_before_everything(client):
    assert_error(add(client, MISSING_ID, {}), 401, UNAUTHORIZED)


def test_student_is_403_before_schema(client, student, klass):
    assert_error(add(client, klass.id, {}, student), 403, TEACHER_REQUIRED)


def test_bad_schema_is_400_before_class_lookup(client, teacher):
    assert_error(add(client, MISSING_ID, {}, teacher), 400, INVALID_SCHEMA)


@pytest.mark.parametrize(
    "body",
    [{}, {"studentId": ""}, {"studentId": "   "}, {"studentId": 5}, {"studentId": None}, {"studentId": ["x"]}],
    ids=["missing", "empty", "blank", "int", "null", "list"],
)
def test_invalid_body_is_400(client, teacher, klass, body):
    assert_error(add(client, klass.id, body, teacher), 400, INVALID_SCHEMA)


@pytest.mark.parametrize("raw", [b"", b"nope", b"[]", b'"id"'], ids=["empty", "garbage", "array", "string"])
def test_body_not_a_json_object_is_400(client, teacher, klass, raw):
    response = post_raw(client, f"/class/{klass.id}/add-student", raw, headers=auth(teacher))
    assert_error(response, 400, INVALID_SCHEMA)


def test_body_over_1_mib_is_413(client, teacher, klass):
    response = post_raw(client, f"/class/{klass.id}/add-student", BIG_BODY, headers=auth(teacher))
    assert_error(response, 413, PAYLOAD_TOO_LARGE)


def test_deeply_nested_json_is_400(client, teacher, klass):
    response = post_raw(client, f"/class/{klass.id}/add-student", DEEP_BODY, headers=auth(teacher))
    assert_error(response, 400, INVALID_SCHEMA)


def test_unknown_class_is_404_before_student_check(client, teacher):
    assert_error(add(client, MISSING_ID, {"studentId": MISSING_ID}, teacher), 404, CLASS_NOT_FOUND)


@pytest.mark.parametrize("class_id", MALFORMED_IDS)
def test_malformed_class_id_is_404(client, teacher, student, class_id):
    assert_error(add(client, class_id, {"studentId": student.id}, teacher), 404, CLASS_NOT_FOUND)


def test_other_teachers_class_is_403_before_student_check(client, other_teacher, klass):
    assert_error(add(client, klass.id, {"studentId": MISSING_ID}, other_teacher), 403, NOT_CLASS_TEACHER)


def test_other_teachers_class_is_403_and_changes_nothing(client, other_teacher, student, klass):
    assert_error(add(client, klass.id, {"studentId": student.id}, other_teacher), 403, NOT_CLASS_TEACHER)
    assert enrolled_ids(klass) == []


def test_unknown_student_is_404(client, teacher, klass):
    assert_error(add(client, klass.id, {"studentId": MISSING_ID}, teacher), 404, STUDENT_NOT_FOUND)


@pytest.mark.parametrize("student_id", MALFORMED_IDS)
def test_malformed_student_id_is_404(client, teacher, klass, student_id):
    assert_error(add(client, klass.id, {"studentId": student_id}, teacher), 404, STUDENT_NOT_FOUND)


def test_teacher_as_student_is_404(client, teacher, other_teacher, klass):
    assert_error(add(client, klass.id, {"studentId": other_teacher.id}, teacher), 404, STUDENT_NOT_FOUND)
    assert_error(add(client, klass.id, {"studentId": teacher.id}, teacher), 404, STUDENT_NOT_FOUND)
    assert enrolled_ids(klass) == []


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_wrong_method_is_405_before_auth(client, method):
    assert_error(getattr(client, method)(f"/class/{MISSING_ID}/add-student"), 405, METHOD_NOT_ALLOWED)
