"""Self check-in windows and their codes: pure functions of a session's record (live.models.AttendanceSession's
`checkin_*` fields), so that every process computes the same code from the database alone.

A code is 6 digits: HMAC-SHA256 of the rotation number under the window's own secret, truncated as HOTP does
(RFC 4226). The rotation number is floor((now - openedAt) / rotateSeconds); a code is accepted during its rotation
and the one after it (the one shown before the current one), never earlier: the secret and future codes never
leave the server (only the teacher's sockets get each code, when its rotation starts).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from live.models import Status

CODE_DIGITS = 6
# Wrong codes a student may send in one window; from then on every check-in of theirs in it is refused.
MAX_WRONG_CODES = 5
# CHECKIN_OPEN's ranges and defaults (docs/api.md).
MINUTES_RANGE = (1, 240)
DEFAULT_MINUTES = 10
ROTATE_SECONDS_RANGE = (10, 300)
DEFAULT_ROTATE_SECONDS = 30
LATE_AFTER_RANGE = (0, 240)

_MS = timedelta(milliseconds=1)


def new_secret() -> str:
    """A window's secret: 32 random bytes, hex."""
    return secrets.token_hex(32)


def code_of(secret: str, rotation: int) -> str:
    """The code of one rotation: HOTP's dynamic truncation of HMAC-SHA256(secret, rotation as 8 bytes)."""
    digest = hmac.new(bytes.fromhex(secret), rotation.to_bytes(8, "big"), hashlib.sha256).digest()
    offset = digest[-1] & 0x0F
    number = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(number % 10**CODE_DIGITS).zfill(CODE_DIGITS)


def checkin_url(base: str, class_id: str, code: str) -> str:
    """The console address that checks in with `code` (docs/api.md): `<base>/#/check-in/<classId>/<code>`."""
    return f"{base.rstrip('/')}/#/check-in/{quote(class_id, safe='')}/{quote(code, safe='')}"


@dataclass(frozen=True)
class Window:
    """An open (or just expired, not yet closed) check-in window of a live session, as its record holds it."""

    session_id: str
    class_id: str
    teacher_id: str
    secret: str
    opened_at: datetime
    closes_at: datetime
    rotate_seconds: int
    late_after_minutes: int | None
    failures: dict[str, int] = field(default_factory=dict, compare=False)

    @classmethod
    def from_row(cls, row: Any) -> Window | None:
        """The window of a session's row; None when it has none (never opened, or closed)."""
        if row.checkin_closes_at is None or row.checkin_secret is None:
            return None
        return cls(
            session_id=row.id,
            class_id=row.klass_id,
            teacher_id=row.teacher_id,
            secret=row.checkin_secret,
            opened_at=row.checkin_opened_at,
            closes_at=row.checkin_closes_at,
            rotate_seconds=row.checkin_rotate_seconds,
            late_after_minutes=row.checkin_late_after,
            failures=dict(row.checkin_failures or {}),
        )

    def is_open(self, now: datetime) -> bool:
        return now < self.closes_at

    def rotation(self, now: datetime) -> int:
        """The rotation under way at `now` (0 from the opening; a clock slightly behind the opener's counts 0)."""
        return max(0, ((now - self.opened_at) // _MS) // (self.rotate_seconds * 1000))

    def code(self, rotation: int) -> str:
        return code_of(self.secret, rotation)

    def expires_at(self, rotation: int) -> datetime:
        """When the rotation's code stops being the one shown (the next one replaces it; it is still accepted for
        one more rotation), or the window's end if sooner."""
        return min(self.opened_at + timedelta(seconds=self.rotate_seconds * (rotation + 1)), self.closes_at)

    def accepts(self, code: str, now: datetime) -> bool:
        """The current rotation's code or the one before it; compared in constant time."""
        current = self.rotation(now)
        candidates = [self.code(n) for n in (current, current - 1) if n >= 0]
        # Every candidate is compared (no early exit), so the time taken says nothing about which matched.
        matches = [hmac.compare_digest(code.encode(), candidate.encode()) for candidate in candidates]
        return any(matches)

    def status_at(self, now: datetime) -> Status:
        """present, or late once lateAfterMinutes have passed since the window opened."""
        late_after = self.late_after_minutes
        if late_after is not None and now >= self.opened_at + timedelta(minutes=late_after):
            return Status.LATE
        return Status.PRESENT

    def wrong_codes(self, student_id: str) -> int:
        return int(self.failures.get(student_id, 0))
