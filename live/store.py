"""Where live sessions are kept: the spec's `activeSession`, one per teacher.

`SessionStore` is the interface the services use; `InMemorySessionStore` serves one process and a
Redis implementation (live.store_redis) serves many. Every method is atomic on its own, so the
services need no locks of their own.
"""

from __future__ import annotations

import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from typing import TypedDict

from django.conf import settings
from django.utils.module_loading import import_string

from live.models import Status


class Summary(TypedDict):
    """Counts of a session: TODAY_SUMMARY's (total = marks so far) and DONE's (total = enrolled students)."""

    present: int
    absent: int
    total: int


@dataclass(frozen=True)
class Session:
    teacher_id: str
    class_id: str
    started_at: str  # ISO 8601 with milliseconds and "Z", as the spec's new Date().toISOString()
    attendance: dict[str, str] = field(default_factory=dict)
    # Set on a session taken by `claim`: names that claim (not part of what the session is).
    claim: str | None = field(default=None, compare=False)
    # A claimed session whose DONE failed and that could not be put back: recovery persists it.
    parked: bool = field(default=False, compare=False)

    def same_run(self, other: Session | None) -> bool:
        """True when `other` is this very session (not a later one that replaced it)."""
        return other is not None and (other.class_id, other.started_at) == (self.class_id, self.started_at)

    def counts(self, students: Collection[str] | None = None) -> Summary:
        """The marks so far; only those of `students` when given (the enrolled: a mark of a student removed or
        deleted since does not count, as DONE does not persist it)."""
        statuses = [s for sid, s in self.attendance.items() if students is None or sid in students]
        present = sum(1 for status in statuses if status == Status.PRESENT)
        absent = sum(1 for status in statuses if status == Status.ABSENT)
        return {"present": present, "absent": absent, "total": present + absent}


class SessionStore(ABC):
    @abstractmethod
    async def start(self, session: Session) -> None:
        """Make `session` its teacher's active session, replacing any earlier one."""

    @abstractmethod
    async def for_teacher(self, teacher_id: str) -> Session | None: ...

    @abstractmethod
    async def for_classes(self, class_ids: Iterable[str]) -> list[Session]:
        """The active sessions of these classes, most recently started first."""

    @abstractmethod
    async def mark(self, session: Session, student_id: str, status: str) -> Session | None:
        """Record a mark in `session` if it is still active; the updated session, or None."""

    @abstractmethod
    async def claim(self, teacher_id: str) -> Session | None:
        """Take the teacher's session out of the store, so exactly one caller gets to persist it.

        The store keeps the claimed copy (its `claim` names it) with a lease of LIVE_CLAIM_LEASE_SECONDS: if the
        claimer neither releases, restores nor parks it in that time (its process died), `take_stale_claims`
        hands it to recovery."""

    @abstractmethod
    async def restore(self, session: Session) -> bool:
        """Put a claimed session back (its persisting failed), unless a new one has started since;
        restored, the claim is gone."""

    @abstractmethod
    async def release(self, session: Session) -> None:
        """Forget a claimed session: it is persisted."""

    @abstractmethod
    async def park(self, session: Session, retry_in: float) -> None:
        """Keep a claimed session that could neither be persisted nor put back; recovery retries persisting
        it after `retry_in` seconds."""

    @abstractmethod
    async def take_stale_claims(self, limit: int = 100) -> list[Session]:
        """Claims whose lease ran out (the claimer died, or a parked retry is due), each leased anew to the
        caller so that no two recoverers work on one."""


def claim_lease_seconds() -> float:
    """How long a claimer may take to persist a session before recovery assumes it died."""
    return float(settings.LIVE_CLAIM_LEASE_SECONDS)


class InMemorySessionStore(SessionStore):
    """Sessions in this process's memory. A lock keeps each operation atomic even when it is called
    from threads other than the event loop's (sync views, tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_teacher: dict[str, Session] = {}
        self._teacher_of_class: dict[str, str] = {}
        self._claims: dict[str, tuple[Session, float]] = {}  # claim → (claimed session, lease deadline)

    async def start(self, session: Session) -> None:
        with self._lock:
            previous = self._by_teacher.get(session.teacher_id)
            if previous is not None:
                self._teacher_of_class.pop(previous.class_id, None)
            self._by_teacher[session.teacher_id] = session
            self._teacher_of_class[session.class_id] = session.teacher_id

    async def for_teacher(self, teacher_id: str) -> Session | None:
        with self._lock:
            return self._by_teacher.get(teacher_id)

    async def for_classes(self, class_ids: Iterable[str]) -> list[Session]:
        with self._lock:
            found = [
                self._by_teacher[teacher_id]
                for class_id in class_ids
                if (teacher_id := self._teacher_of_class.get(class_id)) is not None
            ]
        return sorted(found, key=lambda s: s.started_at, reverse=True)

    async def mark(self, session: Session, student_id: str, status: str) -> Session | None:
        with self._lock:
            current = self._by_teacher.get(session.teacher_id)
            if current is None or not session.same_run(current):
                return None
            # Sessions are immutable snapshots: readers never see a half-applied update.
            updated = replace(current, attendance={**current.attendance, student_id: status})
            self._by_teacher[session.teacher_id] = updated
            return updated

    async def claim(self, teacher_id: str) -> Session | None:
        with self._lock:
            session = self._by_teacher.pop(teacher_id, None)
            if session is None:
                return None
            self._teacher_of_class.pop(session.class_id, None)
            claimed = replace(session, claim=secrets.token_hex(8))
            self._claims[claimed.claim] = (claimed, time.monotonic() + claim_lease_seconds())  # type: ignore[index]
            return claimed

    async def restore(self, session: Session) -> bool:
        with self._lock:
            if session.teacher_id in self._by_teacher:
                return False
            self._claims.pop(session.claim or "", None)
            active = replace(session, claim=None, parked=False)
            self._by_teacher[session.teacher_id] = active
            self._teacher_of_class[session.class_id] = session.teacher_id
            return True

    async def release(self, session: Session) -> None:
        with self._lock:
            self._claims.pop(session.claim or "", None)

    async def park(self, session: Session, retry_in: float) -> None:
        with self._lock:
            if session.claim in self._claims:
                self._claims[session.claim] = (replace(session, parked=True), time.monotonic() + retry_in)

    async def take_stale_claims(self, limit: int = 100) -> list[Session]:
        now = time.monotonic()
        with self._lock:
            stale = [claimed for claimed, deadline in self._claims.values() if deadline <= now][:limit]
            for claimed in stale:
                self._claims[claimed.claim] = (claimed, now + claim_lease_seconds())  # type: ignore[index]
            return stale


@cache
def get_session_store() -> SessionStore:
    """The process-wide store named by settings.SESSION_STORE."""
    store: SessionStore = import_string(settings.SESSION_STORE)()
    return store
