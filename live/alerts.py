"""The email to a student who becomes at risk at a DONE (docs/api.md "Reports and roster").

Sent after the DONE commits, on a thread of its own: DONE never waits for the mail server, and nothing here can
fail it — a mail server that is down, slow or refuses the message is logged, and that is all. Who becomes at risk
is read from the database once the session is persisted (live.history.newly_at_risk): at risk after this session,
not before it.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from threading import Lock

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import close_old_connections, connections, transaction

from accounts.models import User
from classes.models import Class
from live import history

logger = logging.getLogger(__name__)

# One thread: notices are rare (a DONE that tips someone over), and one at a time keeps the mail server's load and
# the database connections this takes small.
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="at-risk-mail")
_pending: set[Future[None]] = set()
_pending_lock = Lock()


def notify_on_commit(class_id: str, session_id: str) -> None:
    """Once the current transaction commits (at once outside one), email the students the persisted session
    `session_id` put at risk, from the mail thread."""

    def submit() -> None:
        try:
            future = _executor.submit(send_notices, class_id, session_id)
        except RuntimeError:  # the interpreter is shutting down
            logger.warning("At-risk notices of session %s not sent: shutting down", session_id)
            return
        with _pending_lock:
            _pending.add(future)
        future.add_done_callback(_forget)

    transaction.on_commit(submit)


def _forget(future: Future[None]) -> None:
    with _pending_lock:
        _pending.discard(future)


def wait_for_notices(timeout: float = 10) -> None:
    """Wait until every notice submitted so far is sent (or failed): for tests and an orderly shutdown."""
    with _pending_lock:
        pending = list(_pending)
    for future in pending:
        future.result(timeout=timeout)


def send_notices(class_id: str, session_id: str) -> None:
    """Find who the session put at risk and email each of them; every failure is logged, never raised."""
    try:
        close_old_connections()
        klass = Class.objects.filter(pk=class_id).first()
        if klass is None:
            return
        standings = history.newly_at_risk(klass, session_id)
        if not standings:
            return
        people = User.objects.filter(pk__in=list(standings)).values_list("id", "name", "email")
        messages = [_message(klass, name, email, standings[sid]) for sid, name, email in people]
        with get_connection(fail_silently=False) as connection:
            for message in messages:
                try:
                    connection.send_messages([message])
                except Exception:
                    logger.exception("Could not send the at-risk notice of class %s to %s", class_id, message.to)
    except Exception:
        logger.exception("At-risk notices of session %s of class %s failed", session_id, class_id)
    finally:
        # This thread's connections: not kept open between DONEs that tip nobody over (an SQLite file's stays with
        # the thread, a file handle: attendance_site/sqlite3).
        for connection in connections.all(initialized_only=True):
            connection.close()


def _message(klass: Class, name: str, email: str, standing: history.Standing) -> EmailMessage:
    """The notice, with the reason(s) the student is at risk. Plain text; the class's name on one line (a header
    cannot hold a line break)."""
    rate, run = standing.rate, standing.consecutive_absences
    class_name = " ".join(klass.class_name.split())
    reasons = []
    if rate is not None and rate < klass.min_rate:
        reasons.append(f"your attendance rate is {rate:.0%}, below the class's {klass.min_rate:.0%}")
    if run >= klass.max_consecutive_absences:
        reasons.append(f"you have missed the last {run} sessions in a row")
    body = (
        f"Hello {name},\n\n"
        f"In {class_name}, {' and '.join(reasons) or 'your attendance needs attention'}.\n"
        "Please talk to your teacher.\n"
    )
    return EmailMessage(
        subject=f"Attendance notice: {class_name}",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email],
    )
