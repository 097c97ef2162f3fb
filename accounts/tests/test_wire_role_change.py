"""Over the wire: the admin turns a teacher into a student through the Django admin of the real server; the
teacher's open socket gets ERROR "Unauthorized or invalid token" and close 1008 at once (it kept marking before),
as HTTP answers 403 at once. In-process cases: live/tests/test_sockets_follow_role.py."""

from __future__ import annotations

import contextlib
import re
import secrets

import httpx
import pytest

from tests.support import (
    CLOSE_POLICY_VIOLATION,
    PASSWORD,
    TEACHER_REQUIRED,
    WS_UNAUTHORIZED,
    ask,
    assert_error,
    error,
    expect_close,
    mark,
    marked,
    new_classroom,
    recv,
    start,
)

pytestmark = pytest.mark.wire

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def admin_client(server) -> httpx.Client:
    """An httpx client logged in to the server's Django admin as a new superuser."""
    email = f"admin-{secrets.token_hex(4)}@example.com"
    server.shell(
        f"from accounts.models import User; User.objects.create_superuser({email!r}, {PASSWORD!r}, name='Admin')"
    )
    client = httpx.Client(base_url=server.http_url, timeout=10)
    page = client.get("/admin/login/")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    login = client.post(
        "/admin/login/", data={"username": email, "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/admin/"}
    )
    assert login.status_code == 302, login.text
    return client


async def test_the_admin_changing_a_teachers_role_closes_their_socket_at_once(wire_server, api, wire_sockets):
    room = new_classroom(api, 1)
    teacher, student = room.teacher, room.students[0]
    start(api, teacher, room.class_id)
    ws = await wire_sockets(wire_server, teacher)
    assert await ask(ws, mark(student.id)) == marked(student.id, "present")

    admin = admin_client(wire_server)
    with contextlib.closing(admin):
        path = f"/admin/accounts/user/{teacher.id}/change/"
        token = CSRF.search(admin.get(path).text).group(1)  # type: ignore[union-attr]
        form = {"name": teacher.name, "email": teacher.email, "role": "student", "password": "", "is_active": "on"}
        changed = admin.post(path, data={**form, "csrfmiddlewaretoken": token})
        assert changed.status_code == 302, changed.text

    assert await recv(ws, timeout=2) == error(WS_UNAUTHORIZED)
    await expect_close(ws, CLOSE_POLICY_VIOLATION, timeout=2)
    assert_error(api.post("/attendance/start", json={"classId": room.class_id}, headers=teacher.headers), 403,
                 TEACHER_REQUIRED)
