"""Authentication and role checks, for HTTP views and WebSocket connections alike."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.models import Role, User
from accounts.tokens import verify_token
from attendance_site.api import ApiError
from attendance_site.fields import is_object_id

UNAUTHORIZED = "Unauthorized, token missing or invalid"
TEACHER_REQUIRED = "Forbidden, teacher access required"
STUDENT_REQUIRED = "Forbidden, student access required"


def user_from_token(token: str | None) -> User | None:
    """The active user a token names, or None for a bad token or a user who no longer exists."""
    if not token:
        return None
    claims = verify_token(token)
    if claims is None or not is_object_id(claims["userId"]):
        return None
    try:
        return User.objects.get(pk=claims["userId"], is_active=True)
    except User.DoesNotExist:
        return None


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


def any_user(request: HttpRequest) -> User:
    user = user_from_token(token_from_header(request.headers.get("Authorization")))
    if user is None:
        raise ApiError(401, UNAUTHORIZED)
    return user


def teacher(request: HttpRequest) -> User:
    user = any_user(request)
    if user.role != Role.TEACHER:
        raise ApiError(403, TEACHER_REQUIRED)
    return user


def student(request: HttpRequest) -> User:
    user = any_user(request)
    if user.role != Role.STUDENT:
        raise ApiError(403, STUDENT_REQUIRED)
    return user
