"""Authentication and role checks, for HTTP views and WebSocket connections alike."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import Role, User
from accounts.tokens import verify_token
from common import messages
from common.errors import DomainError, Forbidden, Unauthenticated
from common.fields import is_object_id
from common.prepared import PreparedInstance, PreparedInstances


def user_from_token(token: str | None) -> User | None:
    """The active user a token names, or None for a bad token or a user who no longer exists."""
    claims = verify_token(token) if token else None
    return None if claims is None else user_from_claims(claims)


# Every HTTP request asks this: compiled once, one query each time (common/prepared.py).
_active_user = PreparedInstance(User, lambda user_id: _active_with_ids([user_id]))


def user_from_claims(claims: dict[str, Any]) -> User | None:
    """The active user verified token claims name, or None if there is none (deleted, deactivated)."""
    user_id = claims["userId"]
    return _active_user(user_id) if is_object_id(user_id) else None


# Every burst of connects asks this (live.participants): compiled once per number of ids, up to MAX_LIST.
_active_among = PreparedInstances(User, lambda ids: _active_with_ids(ids))


def active_users(claims: Iterable[dict[str, Any]]) -> list[User]:
    """The active users that verified token claims name (deleted and deactivated users are not among them;
    claims whose userId is no ObjectId name nobody): one query, for one token or a burst of connects."""
    ids = sorted({c["userId"] for c in claims if is_object_id(c["userId"])})
    return _active_among(ids) if ids else []


def _active_with_ids(ids: list[str]) -> QuerySet[User]:
    """The one statement of who may act: the users with those ids who are still active."""
    return User.objects.filter(pk__in=ids, is_active=True)


def token_from_header(value: str | None) -> str | None:
    """`Authorization: <JWT>` (the spec) or `Authorization: Bearer <JWT>`."""
    if not value:
        return None
    parts = value.split()
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1]
    return None


ROLE_REQUIRED = {Role.TEACHER: messages.TEACHER_REQUIRED, Role.STUDENT: messages.STUDENT_REQUIRED}


@dataclass(frozen=True)
class Access:
    """Who may call an HTTP operation: any signed-in user, or only one role (common.api.Authenticator)."""

    role: Role | None = None

    @property
    def errors(self) -> tuple[DomainError, ...]:
        unauthenticated = Unauthenticated(messages.UNAUTHORIZED)
        return (unauthenticated,) if self.role is None else (unauthenticated, Forbidden(ROLE_REQUIRED[self.role]))

    def __call__(self, request: HttpRequest) -> User:
        # From META, as request.headers reads it: that mapping of every header, made for this one, was ~2.5 % of a
        # small request.
        user = user_from_token(token_from_header(request.META.get("HTTP_AUTHORIZATION")))
        if user is None:
            raise Unauthenticated(messages.UNAUTHORIZED)
        if self.role is not None and user.role != self.role:
            raise Forbidden(ROLE_REQUIRED[self.role])
        return user


any_user = Access()
teacher = Access(Role.TEACHER)
student = Access(Role.STUDENT)
