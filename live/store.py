"""Where live sessions are kept: the spec's `activeSession`, one per teacher.

`SessionStore` is the interface the services use; `InMemorySessionStore` serves one process and a
Redis implementation (live.store_redis) serves many. Every method is atomic on its own, so the
services need no locks of their own.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from live.models import Status


@dataclass(frozen=True)
class Session:
    teacher_id: str
    class_id: str
    started_at: str  # ISO 8601 with milliseconds and "Z", as the spec's new Date().toISOString()
    attendance: dict[str, str] = field(default_factory=dict)

    def same_run(self, other: Session | None) -> bool:
        """True when `other` is this very session (not a later one that replaced it)."""
        return other is not None and (other.class_id, other.started_at) == (self.class_id, self.started_at)

    def counts(self) -> dict[str, int]:
        present = sum(1 for status in self.attendance.values() if status == Status.PRESENT)
        absent = sum(1 for status in self.attendance.values() if status == Status.ABSENT)
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
        """Take the teacher's session out of the store, so exactly one caller gets to persist it."""

    @abstractmethod
    async def restore(self, session: Session) -> bool:
        """Put a claimed session back (its persisting failed), unless a new one has started since."""


class InMemorySessionStore(SessionStore):
    """Sessions in this process's memory. A lock keeps each operation atomic even when it is called
    from threads other than the event loop's (sync views, tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_teacher: dict[str, Session] = {}
        self._teacher_of_class: dict[str, str] = {}

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
            if not session.same_run(current):
                return None
            # Sessions are immutable snapshots: readers never see a half-applied update.
            updated = replace(current, attendance={**current.attendance, student_id: status})
            self._by_teacher[session.teacher_id] = updated
            return updated

    async def claim(self, teacher_id: str) -> Session | None:
        with self._lock:
            session = self._by_teacher.pop(teacher_id, None)
            if session is not None:
                self._teacher_of_class.pop(session.class_id, None)
            return session

    async def restore(self, session: Session) -> bool:
        with self._lock:
            if session.teacher_id in self._by_teacher:
                return False
            self._by_teacher[session.teacher_id] = session
            self._teacher_of_class[session.class_id] = session.teacher_id
            return True


@cache
def get_session_store() -> SessionStore:
    """The process-wide store named by settings.SESSION_STORE."""
    return import_string(settings.SESSION_STORE)()
