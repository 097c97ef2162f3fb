"""Self check-in (docs/api.md "Self check-in"): CHECKIN_OPEN, CHECKIN_CODE, CHECKIN_CLOSE, CHECK_IN and
POST /attendance/check-in. Socket scenarios run in-process and over the wire (`live_site`)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support import (
    ISO_MS_Z,
    assert_ok,
    frame,
    marked,
    recv_all,
)

CODE = re.compile(r"^[0-9]{6}$")


def opened(closes_at: str) -> dict[str, Any]:
    return {"event": "CHECKIN_OPENED", "data": {"closesAt": closes_at}}


CLOSED = {"event": "CHECKIN_CLOSED", "data": {}}


@pytest.fixture
async def live_room(live_site) -> Any:
    """A started session of a class of three students, the teacher's and the students' sockets open."""
    room = await live_site.classroom(3)
    await live_site.start(room.teacher, room.class_id)
    room.teacher_ws = await live_site.open(room.teacher)
    room.student_ws = [await live_site.open(s) for s in room.students]
    return room


async def open_window(room, **data: Any) -> dict[str, Any]:
    """CHECKIN_OPEN: everyone gets CHECKIN_OPENED; the teacher then its first CHECKIN_CODE (returned)."""
    await room.teacher_ws.send(frame("CHECKIN_OPEN", data))
    first = await room.teacher_ws.recv()
    assert first["event"] == "CHECKIN_OPENED" and ISO_MS_Z.match(first["data"]["closesAt"]), first
    await recv_all(first, *room.student_ws)
    code = await room.teacher_ws.recv()
    assert code["event"] == "CHECKIN_CODE", code
    return code["data"]


async def test_a_student_checks_in_with_the_code_over_the_socket_and_http(live_site, live_room):
    room = live_room
    code = await open_window(room)
    assert CODE.match(code["code"]) and ISO_MS_Z.match(code["expiresAt"]), code
    assert code["url"].endswith(f"/#/check-in/{room.class_id}/{code['code']}"), code
    ann, bob = room.students[0], room.students[1]
    await room.student_ws[0].send(frame("CHECK_IN", {"code": code["code"]}))
    await recv_all(marked(ann.id, "present"), room.student_ws[0], room.teacher_ws, *room.student_ws[1:])
    response = await live_site._run(
        live_site.site.post, "/attendance/check-in", {"classId": room.class_id, "code": code["code"]}, bob
    )
    assert assert_ok(response) == {"classId": room.class_id, "status": "present"}
    await recv_all(marked(bob.id, "present"), room.teacher_ws, *room.student_ws)
    await room.teacher_ws.send(frame("CHECKIN_CLOSE"))
    await recv_all(CLOSED, room.teacher_ws, *room.student_ws)
