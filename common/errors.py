"""Domain errors: what went wrong, in the contract's exact words, and nothing about transports.

Services raise these; each transport maps the kind once — HTTP to a status and the JSON envelope
(common.api), the WebSocket to an ERROR event (live.consumers).
"""

from __future__ import annotations


class DomainError(Exception):
    """An expected failure. `message` is the contract's exact text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.message == self.message  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.message))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class Invalid(DomainError):
    """The request is refused as it stands: a schema error, or credentials that do not match."""


class Conflict(DomainError):
    """The request clashes with what exists (an email already taken)."""


class NotNow(DomainError):
    """The request is well-formed, but what it acts on is not in a state that allows it now (HTTP 409): a
    check-in while no window is open, or of a student already marked."""


class Unauthenticated(DomainError):
    """No valid credentials: a missing, bad or expired token, or a user who no longer exists."""


class Forbidden(DomainError):
    """Authenticated, but not allowed: wrong role, not the class's teacher, not enrolled."""


class NotFound(DomainError):
    """Nothing by that id — for this caller (a session they take no part in does not exist for them)."""


class TooManyRequests(DomainError):
    """A limit against abuse was hit; `retry_after` says in how many seconds to try again."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """The work could not be done now (the database failed); nothing was lost, a retry may succeed."""
