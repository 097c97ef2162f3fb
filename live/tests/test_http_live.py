"""POST /attendance/start and GET /class/:id/my-attendance over the wire (real Daphne, httpx).

Order of checks on every protected route: 405 method → 401 auth → 403 role → 400 body → 404 → 403 ownership.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.support import (
    CLASS_NOT_FOUND,
    INVALID_SCHEMA,
    ISO_MS_Z,
    MALFORMED_ID,
    METHOD_NOT_ALLOWED,
    MISSING_ID,
    NOT_CLASS_TEACHER,
    NOT_ENROLLED,
    STUDENT_REQUIRED,
    TEACHER_REQUIRED,
    UNAUTHORIZED,
    ask,
    assert_error,
    assert_ok,
    create_class,
    forge_token,
    frame,
    mark,
    marked,
    my_status,
    persisted_status,
    recv,
    server_jwt_secret,
    start,
    summary,
)

pytestmark = pytest.mark.wire


def post_start(api, headers: dict[str, str] | None, body: object = None, *, raw: bytes | None = None, **kwargs):
    content = raw if raw is not None else json.dumps(body).encode()
    return api.post("/attendance/start", content=content, headers=headers or {}, **kwargs)


# --- POST /attendance/start ------------------------------------------------------------------------------


def test_start_returns_class_and_iso_start_time(api, classroom):
    room = classroom(1)
    before = datetime.now(tz=UTC)
    data = assert_ok(post_start(api, room.teacher.headers, {"classId": room.class_id}))
    after = datetime.now(tz=UTC)
    assert data == {"classId": room.class_id, "startedAt": data["startedAt"]}
    assert ISO_MS_Z.match(data["startedAt"]), data
    started = datetime.strptime(data["startedAt"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    # Same machine, same clock: the start time lies within the request (ms precision, truncated).
    assert before - timedelta(milliseconds=1) <= started <= after


def test_starting_again_gives_a_later_start_time(api, classroom):
    room = classroom(0)
    first = start(api, room.teacher, room.class_id)
    second = start(api, room.teacher, room.class_id)
    assert second > first  # ISO strings of one format sort by time


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {},
    ],
)
def test_start_parses_json_whatever_the_content_type(api, classroom, headers):
    room = classroom(0)
    response = post_start(api, {**room.teacher.headers, **headers}, {"classId": room.class_id, "extra": [1]})
    assert assert_ok(response)["classId"] == room.class_id


def test_start_accepts_a_bearer_token_and_trims_the_class_id(api, classroom):
    room = classroom(0)
    response = post_start(api, {"Authorization": f"Bearer {room.teacher.token}"}, {"classId": f" {room.class_id} "})
    assert assert_ok(response)["classId"] == room.class_id


@pytest.mark.parametrize("case", ["none", "empty", "garbage", "bearer garbage", "deleted user", "expired", "two words"])
def test_start_unauthorized(api, wire_server, make_person, case):
    teacher = make_person("teacher")
    secret = server_jwt_secret(wire_server)
    headers = {
        "none": {},
        "empty": {"Authorization": ""},
        "garbage": {"Authorization": "garbage"},
        "bearer garbage": {"Authorization": "Bearer garbage"},
        "deleted user": {"Authorization": forge_token(secret, user_id=MISSING_ID, role="teacher")},
        "expired": {"Authorization": forge_token(secret, user_id=teacher.id, role="teacher", ttl=-30)},
        "two words": {"Authorization": f"Token {teacher.token}"},
    }[case]
    class_id = create_class(api, teacher)
    assert_error(post_start(api, headers, {"classId": class_id}), 401, UNAUTHORIZED)
    # 401 before the body is looked at.
    assert_error(post_start(api, headers, raw=b"not json"), 401, UNAUTHORIZED)


def test_start_by_a_student_is_forbidden_before_the_body_is_read(api, classroom):
    room = classroom(1)
    student = room.students[0]
    assert_error(post_start(api, student.headers, {"classId": room.class_id}), 403, TEACHER_REQUIRED)
    assert_error(post_start(api, student.headers, raw=b"{"), 403, TEACHER_REQUIRED)
    assert_error(post_start(api, student.headers, {"classId": MISSING_ID}), 403, TEACHER_REQUIRED)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"{",
        b"[]",
        b'"x"',
        b"null",
        b"{}",
        b'{"classId": ""}',
        b'{"classId": "   "}',
        b'{"classId": null}',
        b'{"classId": 5}',
        b'{"classId": ["x"]}',
        b'{"classId": {"$ne": null}}',
        b'{"class_id": "x"}',
    ],
)
def test_start_with_a_bad_body_is_invalid_schema(api, make_person, raw):
    teacher = make_person("teacher")
    assert_error(post_start(api, teacher.headers, raw=raw), 400, INVALID_SCHEMA)


@pytest.mark.parametrize("class_id", [MISSING_ID, MALFORMED_ID, MISSING_ID.upper(), MISSING_ID + "0", "../class"])
def test_start_of_an_unknown_class_is_not_found(api, make_person, class_id):
    teacher = make_person("teacher")
    assert_error(post_start(api, teacher.headers, {"classId": class_id}), 404, CLASS_NOT_FOUND)


def test_start_of_another_teachers_class_is_forbidden(api, classroom, make_person):
    room = classroom(1)
    intruder = make_person("teacher")
    assert_error(post_start(api, intruder.headers, {"classId": room.class_id}), 403, NOT_CLASS_TEACHER)


async def test_failed_starts_leave_sessions_alone(api, classroom, make_person, ws_open):
    """A refused start neither replaces the caller's session nor touches the class owner's."""
    mine, theirs = classroom(1), classroom(1)
    start(api, mine.teacher, mine.class_id)
    start(api, theirs.teacher, theirs.class_id)
    ws = await ws_open(mine.teacher.token)
    their_ws = await ws_open(theirs.teacher.token)
    student = mine.students[0]
    assert await ask(ws, mark(student.id, "present")) == marked(student.id, "present")
    their_student = theirs.students[0]
    assert await ask(their_ws, mark(their_student.id, "absent")) == marked(their_student.id, "absent")

    assert_error(post_start(api, mine.teacher.headers, {"classId": theirs.class_id}), 403, NOT_CLASS_TEACHER)
    assert_error(post_start(api, mine.teacher.headers, {"classId": MISSING_ID}), 404, CLASS_NOT_FOUND)
    assert_error(post_start(api, mine.teacher.headers, {"classId": ""}), 400, INVALID_SCHEMA)
    assert_error(post_start(api, mine.students[0].headers, {"classId": mine.class_id}), 403, TEACHER_REQUIRED)

    assert await ask(ws, frame("TODAY_SUMMARY")) == summary(1, 0)
    assert await ask(their_ws, frame("TODAY_SUMMARY")) == summary(0, 1)
    student_ws = await ws_open(student.token)
    assert await ask(student_ws, frame("MY_ATTENDANCE")) == my_status("present")
    assert await ask(ws, frame("TODAY_SUMMARY")) == summary(1, 0)
    assert await recv(student_ws) == summary(1, 0)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_start_wrong_method_is_405_before_auth(api, method):
    response = api.request(method, "/attendance/start")
    assert_error(response, 405, METHOD_NOT_ALLOWED)


@pytest.mark.parametrize("path", ["/attendance/start/", "/attendance", "/attendance/Start"])
def test_start_paths_are_exact(api, classroom, path):
    room = classroom(0)
    response = api.post(path, json={"classId": room.class_id}, headers=room.teacher.headers)
    assert_error(response, 404, "Not found")


# --- GET /class/:id/my-attendance -----------------------------------------------------------------------------


def my_attendance(api, class_id: str, headers: dict[str, str]):
    return api.get(f"/class/{class_id}/my-attendance", headers=headers)


def test_my_attendance_is_null_before_any_session_is_persisted(api, classroom):
    room = classroom(2)
    assert assert_ok(my_attendance(api, room.class_id, room.students[0].headers)) == {
        "classId": room.class_id,
        "status": None,
    }
    start(api, room.teacher, room.class_id)  # a live session is not persisted
    assert persisted_status(api, room.students[0], room.class_id) is None
    assert persisted_status(api, room.students[1], room.class_id) is None


def test_my_attendance_accepts_a_bearer_token(api, classroom):
    room = classroom(1)
    headers = {"Authorization": f"Bearer {room.students[0].token}"}
    assert assert_ok(my_attendance(api, room.class_id, headers)) == {"classId": room.class_id, "status": None}


@pytest.mark.parametrize("case", ["none", "garbage", "deleted user", "expired"])
def test_my_attendance_unauthorized(api, classroom, wire_server, case):
    room = classroom(1)
    student = room.students[0]
    secret = server_jwt_secret(wire_server)
    headers = {
        "none": {},
        "garbage": {"Authorization": "garbage"},
        "deleted user": {"Authorization": forge_token(secret, user_id=MISSING_ID, role="student")},
        "expired": {"Authorization": forge_token(secret, user_id=student.id, role="student", ttl=-30)},
    }[case]
    assert_error(my_attendance(api, room.class_id, headers), 401, UNAUTHORIZED)


@pytest.mark.parametrize("class_id", ["own", "other", MISSING_ID, MALFORMED_ID])
def test_my_attendance_for_a_teacher_is_forbidden_whatever_the_class(api, classroom, class_id):
    room, other = classroom(1), classroom(1)
    class_id = {"own": room.class_id, "other": other.class_id}.get(class_id, class_id)
    assert_error(my_attendance(api, class_id, room.teacher.headers), 403, STUDENT_REQUIRED)


def test_my_attendance_not_enrolled(api, classroom, make_person):
    room = classroom(1)
    start(api, room.teacher, room.class_id)
    assert_error(my_attendance(api, room.class_id, make_person("student").headers), 403, NOT_ENROLLED)


@pytest.mark.parametrize("class_id", [MISSING_ID, MALFORMED_ID, MISSING_ID.upper()])
def test_my_attendance_of_an_unknown_class_is_not_found(api, make_person, class_id):
    # Existence before enrolment: a student enrolled nowhere still gets 404.
    assert_error(my_attendance(api, class_id, make_person("student").headers), 404, CLASS_NOT_FOUND)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_my_attendance_wrong_method_is_405_before_auth(api, method):
    assert_error(api.request(method, f"/class/{MISSING_ID}/my-attendance"), 405, METHOD_NOT_ALLOWED)


def test_my_attendance_path_is_exact(api, classroom):
    room = classroom(1)
    response = api.get(f"/class/{room.class_id}/my-attendance/", headers=room.students[0].headers)
    assert_error(response, 404, "Not found")
