"""POST /class/:id/add-student, in-process and over the wire (the `site` fixture), with the contract's check
order: 401 → 403 role → 400 schema → 404 "Class not found" → 403 "Forbidden, not class teacher" → 404
"Student not found"."""

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
)


def add(site, class_id, body, who=None):
    return site.post(f"/class/{class_id}/add-student", body, who)


def post_raw(site, class_id, raw, who, **options):
    return site.post(f"/class/{class_id}/add-student", raw=raw, who=who, **options)


@pytest.fixture
def room(site):
    """A teacher, a student and the teacher's class "Maths 101" (nobody enrolled)."""
    teacher, student = site.person("teacher"), site.person("student")
    return teacher, student, site.new_class(teacher, name="Maths 101")


def test_teacher_adds_student(site, room):
    teacher, student, class_id = room
    data = assert_ok(add(site, class_id, {"studentId": student.id}, teacher))

    assert data == {
        "_id": class_id,
        "className": "Maths 101",
        "teacherId": teacher.id,
        "studentIds": [student.id],
        "minRate": 0.8,
        "maxConsecutiveAbsences": 3,
    }
    assert site.enrolled(teacher, class_id) == [student.id]


def test_adding_keeps_earlier_students_in_order(site, room):
    teacher, student, class_id = room
    second = site.person("student")
    assert_ok(add(site, class_id, {"studentId": student.id}, teacher))
    data = assert_ok(add(site, class_id, {"studentId": second.id}, teacher))
    assert data["studentIds"] == [student.id, second.id]


def test_adding_twice_keeps_one_entry(site, room):
    teacher, student, class_id = room
    assert_ok(add(site, class_id, {"studentId": student.id}, teacher))
    data = assert_ok(add(site, class_id, {"studentId": student.id}, teacher))
    assert data["studentIds"] == [student.id]
    assert site.enrolled(teacher, class_id) == [student.id]


def test_student_id_is_trimmed_and_unknown_fields_ignored(site, room):
    teacher, student, class_id = room
    data = assert_ok(add(site, class_id, {"studentId": f"  {student.id} ", "classId": "x"}, teacher))
    assert data["studentIds"] == [student.id]


def test_body_parsed_with_text_plain(site, room):
    teacher, student, class_id = room
    response = post_raw(site, class_id, f'{{"studentId": "{student.id}"}}', teacher, content_type="text/plain")
    assert assert_ok(response)["studentIds"] == [student.id]


# --- errors, one step of the order at a time ---------------------------------------------------
def test_without_token_is_401_before_everything(site):
    assert_error(add(site, MISSING_ID, {}), 401, UNAUTHORIZED)


def test_student_is_403_before_schema(site, room):
    _, student, class_id = room
    assert_error(add(site, class_id, {}, student), 403, TEACHER_REQUIRED)
    assert_error(add(site, MISSING_ID, {}, student), 403, TEACHER_REQUIRED)


def test_bad_schema_is_400_before_class_lookup(site):
    assert_error(add(site, MISSING_ID, {}, site.person("teacher")), 400, INVALID_SCHEMA)


@pytest.mark.parametrize(
    "body",
    [{}, {"studentId": ""}, {"studentId": "   "}, {"studentId": 5}, {"studentId": None}, {"studentId": ["x"]}],
    ids=["missing", "empty", "blank", "int", "null", "list"],
)
def test_invalid_body_is_400(site, room, body):
    teacher, _, class_id = room
    assert_error(add(site, class_id, body, teacher), 400, INVALID_SCHEMA)


@pytest.mark.parametrize("raw", [b"", b"nope", b"[]", b'"id"'], ids=["empty", "garbage", "array", "string"])
def test_body_not_a_json_object_is_400(site, room, raw):
    teacher, _, class_id = room
    assert_error(post_raw(site, class_id, raw, teacher), 400, INVALID_SCHEMA)


def test_body_over_1_mib_is_413(site, room):
    teacher, _, class_id = room
    assert_error(post_raw(site, class_id, BIG_BODY, teacher), 413, PAYLOAD_TOO_LARGE)


def test_deeply_nested_json_is_400(site, room):
    teacher, _, class_id = room
    assert_error(post_raw(site, class_id, DEEP_BODY, teacher), 400, INVALID_SCHEMA)


def test_unknown_class_is_404_before_student_check(site):
    assert_error(add(site, MISSING_ID, {"studentId": MISSING_ID}, site.person("teacher")), 404, CLASS_NOT_FOUND)


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
def test_malformed_class_or_student_id_is_404(site, room, bad_id):
    teacher, student, class_id = room
    assert_error(add(site, bad_id, {"studentId": student.id}, teacher), 404, CLASS_NOT_FOUND)
    assert_error(add(site, class_id, {"studentId": bad_id}, teacher), 404, STUDENT_NOT_FOUND)


def test_other_teachers_class_is_403_before_student_check(site, room):
    _, _, class_id = room
    assert_error(add(site, class_id, {"studentId": MISSING_ID}, site.person("teacher")), 403, NOT_CLASS_TEACHER)


def test_other_teachers_class_is_403_and_changes_nothing(site, room):
    teacher, student, class_id = room
    assert_error(add(site, class_id, {"studentId": student.id}, site.person("teacher")), 403, NOT_CLASS_TEACHER)
    assert site.enrolled(teacher, class_id) == []


def test_unknown_student_is_404(site, room):
    teacher, _, class_id = room
    assert_error(add(site, class_id, {"studentId": MISSING_ID}, teacher), 404, STUDENT_NOT_FOUND)


def test_teacher_as_student_is_404(site, room):
    teacher, _, class_id = room
    assert_error(add(site, class_id, {"studentId": site.person("teacher").id}, teacher), 404, STUDENT_NOT_FOUND)
    assert_error(add(site, class_id, {"studentId": teacher.id}, teacher), 404, STUDENT_NOT_FOUND)
    assert site.enrolled(teacher, class_id) == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_method_is_405_before_auth(site, method):
    assert_error(site.request(method, f"/class/{MISSING_ID}/add-student"), 405, METHOD_NOT_ALLOWED)
