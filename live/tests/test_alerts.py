"""The email to a student who becomes at risk at a DONE (docs/api.md "Reports and roster"): in-process with Django's
locmem backend, and once over the wire through a real SMTP conversation with a local sink.

Sent after the DONE commits, from a thread of its own: the in-process tests commit for real (transactional
database), so that the mail thread reads what DONE wrote, as it does in production."""

from __future__ import annotations

import asyncio
import email
import socket
import threading
import time
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from django.core import mail

from common.errors import NotFound
from live import alerts, commands, selectors
from tests.support import (
    Person,
    create_class,
    enrol,
    frame,
    make_class,
    make_user,
    mark,
    marked,
    own_wire_server,
    recv,
    start,
)

# The notices' real thread, on every database: each DONE here waits for its notices before the test goes on.
pytestmark = pytest.mark.mail_thread


def done_session(teacher: Any, klass: Any, marks: dict[str, str]) -> dict[str, Any]:
    """A session of the class, marked and persisted by DONE (committed: the test database is transactional)."""
    session = commands.start_session(teacher, klass.id)
    for student_id, status in marks.items():
        commands.mark_attendance(session, student_id, status, teacher.id)
    summary = dict(commands.finish_session(selectors.active_session(teacher.id)))
    alerts.wait_for_notices()
    return summary


@pytest.fixture
def classroom(transactional_db: Any) -> tuple[Any, Any, Any, Any]:
    teacher = make_user("teacher", name="Tina")
    ann, bob = make_user("student", name="Ann"), make_user("student", name="Bob")
    klass = make_class(teacher, [ann, bob], name="Maths 101")
    return teacher, klass, ann, bob


def settings_of(klass: Any, min_rate: float, run: int) -> None:
    klass.min_rate, klass.max_consecutive_absences = min_rate, run
    klass.save()


def test_a_student_who_becomes_at_risk_at_a_done_gets_one_email(classroom):
    teacher, klass, ann, bob = classroom
    settings_of(klass, 0.5, 2)
    done_session(teacher, klass, {ann.id: "present", bob.id: "present"})
    done_session(teacher, klass, {ann.id: "present", bob.id: "absent"})  # Bob: 0.5 is not below 0.5; a run of 1
    assert mail.outbox == []
    summary = done_session(teacher, klass, {ann.id: "present"})  # Bob unmarked: absent; 1/3, a run of 2
    assert (summary["present"], summary["absent"]) == (1, 1)
    [notice] = mail.outbox
    assert notice.to == [bob.email]
    assert notice.subject == "Attendance notice: Maths 101"
    assert "Bob" in notice.body and "33%" in notice.body and "last 2 sessions in a row" in notice.body
    # Still at risk: no second email; back above the line and then under it again: a new one.
    done_session(teacher, klass, {ann.id: "present", bob.id: "absent"})
    done_session(teacher, klass, {ann.id: "excused", bob.id: "present"})
    assert len(mail.outbox) == 1
    settings_of(klass, 0.3, 100)  # Bob: 2/5 = 0.4, not at risk now
    done_session(teacher, klass, {ann.id: "present", bob.id: "present"})  # 3/6
    assert len(mail.outbox) == 1
    for _ in range(2):
        done_session(teacher, klass, {ann.id: "present", bob.id: "absent"})  # 3/7 then 3/8
    assert len(mail.outbox) == 1
    done_session(teacher, klass, {ann.id: "present", bob.id: "absent"})  # 3/9 = 0.3333: not below 0.3 yet
    assert len(mail.outbox) == 1
    done_session(teacher, klass, {ann.id: "present", bob.id: "absent"})  # 3/10 = 0.3: not below
    done_session(teacher, klass, {ann.id: "present", bob.id: "absent"})  # 3/11 = 0.2727: below
    assert [m.to for m in mail.outbox] == [[bob.email], [bob.email]]
    assert "27%" in mail.outbox[1].body and "in a row" not in mail.outbox[1].body


def test_the_run_alone_puts_a_student_at_risk(classroom):
    teacher, klass, ann, bob = classroom
    settings_of(klass, 0, 2)
    done_session(teacher, klass, {ann.id: "absent", bob.id: "present"})
    done_session(teacher, klass, {ann.id: "excused", bob.id: "present"})  # excused: the run goes on
    assert mail.outbox == []
    done_session(teacher, klass, {ann.id: "absent", bob.id: "present"})
    [notice] = mail.outbox
    assert notice.to == [ann.email] and "last 2 sessions in a row" in notice.body and "below" not in notice.body


class FailingBackend:
    """A mail server that refuses every connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> FailingBackend:
        raise ConnectionRefusedError("no mail server here")

    def __exit__(self, *exc: Any) -> None:
        pass


RELEASE = threading.Event()


class SlowBackend(FailingBackend):
    """A mail server that takes its time: holds every message until RELEASE."""

    sent: list[Any] = []

    def __enter__(self) -> SlowBackend:
        return self

    def send_messages(self, messages: list[Any]) -> int:
        RELEASE.wait(10)
        SlowBackend.sent += messages
        return len(messages)


def test_a_failing_mail_server_never_fails_the_done(classroom, settings, caplog):
    teacher, klass, ann, bob = classroom
    settings.EMAIL_BACKEND = "live.tests.test_alerts.FailingBackend"
    settings_of(klass, 0.9, 100)
    summary = done_session(teacher, klass, {ann.id: "present"})  # Bob absent: at risk
    assert (summary["present"], summary["absent"], summary["total"]) == (1, 1, 2)
    assert "At-risk notices" in caplog.text and "no mail server here" in caplog.text
    with pytest.raises(NotFound):  # persisted all the same: no live session left
        selectors.active_session(teacher.id)


def test_a_slow_mail_server_never_delays_the_done(classroom, settings):
    teacher, klass, ann, bob = classroom
    settings.EMAIL_BACKEND = "live.tests.test_alerts.SlowBackend"
    settings_of(klass, 0.9, 100)
    RELEASE.clear()
    SlowBackend.sent = []
    session = commands.start_session(teacher, klass.id)
    began = time.monotonic()
    commands.finish_session(session)
    assert time.monotonic() - began < 5  # the mail thread holds the message until RELEASE (10 s)
    assert SlowBackend.sent == []
    RELEASE.set()
    alerts.wait_for_notices()
    assert sorted(m.to[0] for m in SlowBackend.sent) == sorted([ann.email, bob.email])


def test_a_done_rolled_back_sends_nothing(classroom):
    """The notice waits for the commit (on_commit): a DONE whose transaction is rolled back sends none. The
    transaction is the database's (commands.transaction_if_supported: Django's on SQL, the backend's own on a
    MongoDB replica set)."""
    teacher, klass, ann, bob = classroom
    settings_of(klass, 0.9, 100)
    commands.start_session(teacher, klass.id)
    atomic = commands.transaction_if_supported()
    if atomic is None:
        pytest.skip("no transactions (standalone MongoDB): DONE's own fence, not a rollback")
    with pytest.raises(RuntimeError), atomic:
        commands.finish_session(selectors.active_session(teacher.id))
        raise RuntimeError("rolled back")
    alerts.wait_for_notices()
    assert mail.outbox == []


# --- over the wire: a real SMTP conversation ---------------------------------------------------------------------


class SmtpSink:
    """Just enough of an SMTP server (RFC 5321) to take messages: every message it is sent, parsed."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.messages: list[Message] = []
        self.received = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 sink ESMTP\r\n")
            for line in lines:
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250 sink\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 end with .\r\n")
                    data = b"".join(iter(lambda: lines.readline(), b".\r\n"))
                    with self.received:
                        self.messages.append(email.message_from_bytes(data))
                        self.received.notify_all()
                    conn.sendall(b"250 queued\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:  # MAIL, RCPT, RSET, NOOP
                    conn.sendall(b"250 ok\r\n")

    def wait(self, count: int, timeout: float = 15) -> list[Message]:
        with self.received:
            self.received.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.close()


@pytest.mark.wire
async def test_over_the_wire_the_email_reaches_an_smtp_server(tmp_path, smtp_sink, wire_sockets):
    import httpx

    env = {"EMAIL_URL": f"smtp://127.0.0.1:{smtp_sink.port}", "EMAIL_FROM": "School <office@school.test>"}
    with own_wire_server(tmp_path, env) as server, httpx.Client(base_url=server.http_url, timeout=10) as api:
        teacher, ann, bob = (Person(api, role, name) for role, name in (("teacher", "Tina"), ("student", "Ann"),
                                                                         ("student", "Bob")))
        class_id = create_class(api, teacher, "Physics")
        enrol(api, teacher, class_id, ann, bob)
        response = api.patch(f"/class/{class_id}", json={"minRate": 0.9}, headers=teacher.headers)
        assert response.status_code == 200, response.text
        start(api, teacher, class_id)
        ws = await wire_sockets(server, teacher)
        await ws.send(mark(ann.id, "present"))
        assert await recv(ws) == marked(ann.id, "present")
        await ws.send(frame("DONE"))
        reply = await recv(ws)
        assert reply["event"] == "DONE" and reply["data"]["absent"] == 1
        [message] = await asyncio.to_thread(smtp_sink.wait, 1)
        assert message["To"] == bob.email
        assert message["From"] == "School <office@school.test>"
        assert message["Subject"] == "Attendance notice: Physics"
        assert "Bob" in message.get_payload(decode=True).decode()
        await asyncio.sleep(0.5)
        assert len(smtp_sink.messages) == 1  # Ann, present, is not at risk
