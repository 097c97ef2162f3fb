"""Over the wire: POST /class, POST /class/:id/add-student and GET /class/:id against a real Daphne process."""

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
    NOT_FOUND,
    OBJECT_ID,
    PAYLOAD_TOO_LARGE,
    STUDENT_NOT_FOUND,
    TEACHER_REQUIRED,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
)

pytestmark = pytest.mark.wire


@pytest.fixture
def teacher(make_person):
    return make_person("teacher")


@pytest.fixture
def student(make_person):
    return make_person("student")


@pytest.fixture
def class_id(api, teacher):
    return assert_ok(api.post("/class", json={"className": "Wire Maths"}, headers=teacher.headers), 201)["_id"]


def add(api, class_id, body, person=None):
    return api.post(f"/class/{class_id}/add-student", json=body, headers=person.headers if person else {})


def member(person):
    return {"_id": person.id, "name": person.name, "email": person.email}


# --- POST /class -------------------------------------------------------------------------------------------
def test_create_class(api, teacher):
    data = assert_ok(
        api.post("/class", json={"className": "  Wire Physics ", "teacherId": "x"}, headers=teacher.headers), 201
    )
    assert set(data) == {"_id", "className", "teacherId", "studentIds"}
    assert OBJECT_ID.match(data["_id"])
    assert (data["className"], data["teacherId"], data["studentIds"]) == ("Wire Physics", teacher.id, [])


def test_create_class_with_text_plain_body(api, teacher):
    headers = {**teacher.headers, "Content-Type": "text/plain"}
    assert_ok(api.post("/class", content=b'{"className": "Plain"}', headers=headers), 201)


def test_create_class_without_token_is_401(api):
    assert_error(api.post("/class", json={"className": "X"}), 401, UNAUTHORIZED)


def test_create_class_as_student_is_403_before_schema(api, student):
    assert_error(api.post("/class", json={"className": "X"}, headers=student.headers), 403, TEACHER_REQUIRED)
    assert_error(api.post("/class", json={}, headers=student.headers), 403, TEACHER_REQUIRED)


@pytest.mark.parametrize(
    "body", [{}, {"className": ""}, {"className": "  "}, {"className": 5}], ids=["missing", "empty", "blank", "int"]
)
def test_create_class_invalid_body_is_400(api, teacher, body):
    assert_error(api.post("/class", json=body, headers=teacher.headers), 400, INVALID_SCHEMA)


@pytest.mark.parametrize("raw", [b"nope", b"[]", b'"x"'], ids=["garbage", "array", "string"])
def test_create_class_body_not_a_json_object_is_400(api, teacher, raw):
    assert_error(api.post("/class", content=raw, headers=teacher.headers), 400, INVALID_SCHEMA)


def test_create_class_body_over_1_mib_is_413(api, teacher):
    assert_error(api.post("/class", content=BIG_BODY, headers=teacher.headers), 413, PAYLOAD_TOO_LARGE)


def test_create_class_deeply_nested_json_is_400(api, teacher):
    assert_error(api.post("/class", content=DEEP_BODY, headers=teacher.headers), 400, INVALID_SCHEMA)


# --- POST /class/:id/add-student ---------------------------------------------------------------------------
def test_add_student_twice_keeps_one_entry(api, teacher, student, class_id, make_person):
    data = assert_ok(add(api, class_id, {"studentId": student.id}, teacher))
    assert data == {"_id": class_id, "className": "Wire Maths", "teacherId": teacher.id, "studentIds": [student.id]}
    assert assert_ok(add(api, class_id, {"studentId": student.id}, teacher))["studentIds"] == [student.id]
    second = make_person("student")
    assert assert_ok(add(api, class_id, {"studentId": second.id}, teacher))["studentIds"] == [student.id, second.id]


def test_add_student_check_order(api, teacher, student, class_id, make_person):
    other_teacher = make_person("teacher")
    # 401 → 403 role → 400 schema → 404 class → 403 ownership → 404 student, each step hiding the later ones.
    assert_error(add(api, MISSING_ID, {}), 401, UNAUTHORIZED)
    assert_error(add(api, MISSING_ID, {}, student), 403, TEACHER_REQUIRED)
    assert_error(add(api, MISSING_ID, {}, teacher), 400, INVALID_SCHEMA)
    assert_error(add(api, MISSING_ID, {"studentId": MISSING_ID}, teacher), 404, CLASS_NOT_FOUND)
    assert_error(add(api, class_id, {"studentId": MISSING_ID}, other_teacher), 403, NOT_CLASS_TEACHER)
    assert_error(add(api, class_id, {"studentId": MISSING_ID}, teacher), 404, STUDENT_NOT_FOUND)


@pytest.mark.parametrize("bad_id", MALFORMED_IDS)
def test_add_student_malformed_ids_are_404(api, teacher, student, class_id, bad_id):
    assert_error(add(api, bad_id, {"studentId": student.id}, teacher), 404, CLASS_NOT_FOUND)
    assert_error(add(api, class_id, {"studentId": bad_id}, teacher), 404, STUDENT_NOT_FOUND)


def test_add_teacher_as_student_is_404(api, teacher, class_id, make_person):
    assert_error(add(api, class_id, {"studentId": make_person("teacher").id}, teacher), 404, STUDENT_NOT_FOUND)
    assert_error(add(api, class_id, {"studentId": teacher.id}, teacher), 404, STUDENT_NOT_FOUND)


@pytest.mark.parametrize(
    "body", [{"studentId": ""}, {"studentId": 5}, {"studentId": None}], ids=["empty", "int", "null"]
)
def test_add_student_invalid_body_is_400(api, teacher, class_id, body):
    assert_error(add(api, class_id, body, teacher), 400, INVALID_SCHEMA)


def test_add_student_body_over_1_mib_is_413(api, teacher, class_id):
    response = api.post(f"/class/{class_id}/add-student", content=BIG_BODY, headers=teacher.headers)
    assert_error(response, 413, PAYLOAD_TOO_LARGE)


# --- GET /class/:id ------------------------------------------------------------------------------------------
def test_class_detail_for_teacher_and_enrolled_student(api, teacher, student, class_id, make_person):
    second = make_person("student")
    for person in (student, second):
        assert_ok(add(api, class_id, {"studentId": person.id}, teacher))
    expected = {
        "_id": class_id,
        "className": "Wire Maths",
        "teacherId": teacher.id,
        "students": [member(student), member(second)],
    }
    assert assert_ok(api.get(f"/class/{class_id}", headers=teacher.headers)) == expected
    assert assert_ok(api.get(f"/class/{class_id}", headers=student.headers)) == expected


def test_class_detail_forbidden_for_other_teacher_and_non_enrolled_student(api, class_id, make_person):
    for outsider in (make_person("teacher"), make_person("student")):
        assert_error(api.get(f"/class/{class_id}", headers=outsider.headers), 403, NOT_CLASS_TEACHER)


def test_class_detail_without_token_is_401(api, class_id):
    assert_error(api.get(f"/class/{class_id}"), 401, UNAUTHORIZED)
    assert_error(api.get(f"/class/{class_id}", headers={"Authorization": "garbage"}), 401, UNAUTHORIZED)


@pytest.mark.parametrize("bad_id", [MISSING_ID, *MALFORMED_IDS])
def test_class_detail_unknown_or_malformed_id_is_404(api, teacher, bad_id):
    assert_error(api.get(f"/class/{bad_id}", headers=teacher.headers), 404, CLASS_NOT_FOUND)


def test_class_detail_trailing_slash_is_404(api, teacher, class_id):
    assert_error(api.get(f"/class/{class_id}/", headers=teacher.headers), 404, NOT_FOUND)


# --- wrong methods ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/class"),
        ("DELETE", "/class"),
        ("DELETE", "/class/x"),
        ("PUT", f"/class/{MISSING_ID}"),
        ("GET", f"/class/{MISSING_ID}/add-student"),
    ],
)
def test_wrong_method_is_405_without_auth(api, method, path):
    assert_error(api.request(method, path), 405, METHOD_NOT_ALLOWED)
