"""Self check-in with real processes (docs/api.md "Self check-in"): codes rotating in real time, a window that
survives a restart, and two workers sharing Redis that show the same code. The rules themselves: test_checkin.py.

Each test has a database of the run's backend (SQLite here, PostgreSQL and MongoDB in the CI passes).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.servers import DaphneServer, RedisServer
from tests.support import (
    INVALID_CODE,
    TOO_MANY_ATTEMPTS,
    ask,
    assert_error,
    assert_ok,
    error,
    frame,
    marked,
    new_classroom,
    recv,
    recv_all,
    start,
    wire_servers,
)

pytestmark = pytest.mark.wire

CLOSED = {"event": "CHECKIN_CLOSED", "data": {}}


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def opened_with_code(teacher_ws: Any, **data: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send CHECKIN_OPEN; the CHECKIN_OPENED and CHECKIN_CODE the teacher's socket gets, in that order."""
    await teacher_ws.send(frame("CHECKIN_OPEN", data))
    opened, code = await recv(teacher_ws), await recv(teacher_ws)
    assert (opened["event"], code["event"]) == ("CHECKIN_OPENED", "CHECKIN_CODE"), (opened, code)
    return opened, code


def check_in(server: DaphneServer, student: Any, class_id: str, code: str) -> httpx.Response:
    with httpx.Client(base_url=server.http_url, timeout=10) as api:
        return api.post("/attendance/check-in", json={"classId": class_id, "code": code}, headers=student.headers)


async def test_codes_rotate_every_ten_seconds_and_the_previous_one_still_works(api, wire_server, wire_sockets):
    """rotateSeconds 10, in real time: a new CHECKIN_CODE at each rotation's end (its `expiresAt`); while code 1 is
    shown, code 0 still checks in; once code 2 is shown, code 0 no longer does, and code 1 still does."""
    room = new_classroom(api, 3)
    ann, bob, cleo = room.students
    start(api, room.teacher, room.class_id)
    teacher = await wire_sockets(wire_server, room.teacher)
    _, first = await opened_with_code(teacher, rotateSeconds=10)
    codes = [first["data"]]

    async def next_code() -> dict[str, Any]:
        """The next CHECKIN_CODE: when the one before expired (its expiresAt), and 10 s after it."""
        message = await recv(teacher, timeout=12)
        received, previous = time.time(), codes[-1]
        assert message["event"] == "CHECKIN_CODE", message
        assert abs(received - moment(previous["expiresAt"]).timestamp()) < 1.0, (previous, message, received)
        assert moment(message["data"]["expiresAt"]) - moment(previous["expiresAt"]) == timedelta(seconds=10)
        codes.append(message["data"])
        return message["data"]

    await next_code()  # rotation 1: the code shown before still works
    assert assert_ok(check_in(wire_server, ann, room.class_id, codes[0]["code"]))["status"] == "present"
    assert await recv(teacher) == marked(ann.id, "present")
    await next_code()  # rotation 2: code 0 is two rotations old (unless it equals a valid one: 1 in 500,000)
    if codes[0]["code"] not in (codes[1]["code"], codes[2]["code"]):
        assert_error(check_in(wire_server, bob, room.class_id, codes[0]["code"]), 400, INVALID_CODE)
    assert assert_ok(check_in(wire_server, bob, room.class_id, codes[1]["code"]))["status"] == "present"
    assert await recv(teacher) == marked(bob.id, "present")
    student = await wire_sockets(wire_server, cleo)
    assert await ask(student, frame("CHECK_IN", {"code": codes[2]["code"]})) == marked(cleo.id, "present")


async def test_a_restart_keeps_the_window_open_with_the_same_codes_and_wrong_counts(tmp_path, wire_sockets):
    """`make run`'s one process, SIGKILLed during a window: after the restart the window is open with the same
    closesAt and code (the teacher's new socket gets it at once), the code checks in, and the wrong codes counted
    before the restart still count."""
    with wire_servers(tmp_path, 1, {"REDIS_URL": ""}) as [server]:
        with httpx.Client(base_url=server.http_url, timeout=10) as api:
            room = new_classroom(api, 2)
            start(api, room.teacher, room.class_id)
        teacher = await wire_sockets(server, room.teacher)
        opened, code = await opened_with_code(teacher, rotateSeconds=300, minutes=30, lateAfterMinutes=20)
        wrong = "000000" if code["data"]["code"] != "000000" else "111111"
        for _ in range(3):
            assert_error(check_in(server, room.students[1], room.class_id, wrong), 400, INVALID_CODE)

        server.kill()
        server.start()
        with httpx.Client(base_url=server.http_url, timeout=10) as api:
            window = assert_ok(api.get("/attendance/active", headers=room.teacher.headers))["checkIn"]
        assert window is not None and window["closesAt"] == opened["data"]["closesAt"], window
        assert (window["rotateSeconds"], window["lateAfterMinutes"]) == (300, 20)
        teacher = await wire_sockets(server, room.teacher)  # the projector view reconnects
        again = await recv(teacher)
        assert again["event"] == "CHECKIN_CODE" and again["data"]["code"] == code["data"]["code"], (again, code)
        assert again["data"]["expiresAt"] == code["data"]["expiresAt"]
        response = check_in(server, room.students[0], room.class_id, code["data"]["code"])
        assert assert_ok(response) == {"classId": room.class_id, "status": "present"}
        assert await recv(teacher) == marked(room.students[0].id, "present")
        for _ in range(2):
            assert_error(check_in(server, room.students[1], room.class_id, wrong), 400, INVALID_CODE)
        response = check_in(server, room.students[1], room.class_id, code["data"]["code"])
        assert_error(response, 429, TOO_MANY_ATTEMPTS)  # 3 before the restart + 2 after
        assert int(response.headers["Retry-After"]) <= 900


async def test_two_workers_over_redis_show_the_same_code(tmp_path, wire_sockets):
    """Two workers sharing Redis and the database: the teacher's sockets on both get the same code at once (each
    computes it from the record); a student on the other worker checks in with it; a close is announced once."""
    redis_server = RedisServer(tmp_path).start()
    try:
        with wire_servers(tmp_path, 2, {"REDIS_URL": redis_server.url}) as [a, b]:
            with httpx.Client(base_url=a.http_url, timeout=10) as api:
                room = new_classroom(api, 2)
                start(api, room.teacher, room.class_id)
            teacher_a = await wire_sockets(a, room.teacher)
            teacher_b = await wire_sockets(b, room.teacher)
            students_b = [await wire_sockets(b, s) for s in room.students]
            opened, code_a = await opened_with_code(teacher_a, rotateSeconds=60)
            await recv_all(opened, teacher_b, *students_b)
            code_b = await recv(teacher_b)
            assert code_b["event"] == "CHECKIN_CODE"
            assert (code_b["data"]["code"], code_b["data"]["expiresAt"]) == (
                code_a["data"]["code"], code_a["data"]["expiresAt"],
            )
            # Each url names the worker the teacher's socket reached.
            assert urlsplit(code_a["data"]["url"]).port == a.port and urlsplit(code_b["data"]["url"]).port == b.port
            code = code_a["data"]["code"]
            await students_b[0].send(frame("CHECK_IN", {"code": code}))
            await recv_all(marked(room.students[0].id, "present"), students_b[0], teacher_a, teacher_b, students_b[1])
            response = check_in(a, room.students[1], room.class_id, code)
            assert assert_ok(response) == {"classId": room.class_id, "status": "present"}
            await recv_all(marked(room.students[1].id, "present"), teacher_a, teacher_b, *students_b)
            await teacher_b.send(frame("CHECKIN_CLOSE"))
            await recv_all(CLOSED, teacher_b, teacher_a, *students_b)
            assert await ask(teacher_a, frame("CHECKIN_CLOSE")) == error("Check-in is not open")
    finally:
        redis_server.kill()
