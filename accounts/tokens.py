"""JWT issue and verify (HS256). Claims: userId, role, iat, exp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from django.conf import settings

ALGORITHM = "HS256"


def issue_token(user_id: str, role: str) -> str:
    now = datetime.now(tz=UTC)
    claims = {
        "userId": user_id,
        "role": role,
        "iat": now,
        "exp": now + timedelta(seconds=settings.JWT_TTL_SECONDS),
    }
    return jwt.encode(claims, settings.JWT_SECRET, algorithm=ALGORITHM)


def verify_token(token: str) -> dict[str, Any] | None:
    """The token's claims, or None if it is malformed, expired, badly signed or lacks a claim."""
    try:
        claims = jwt.decode(
            token,
            settings.JWT_SECRET,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "userId", "role"]},
        )
    except jwt.PyJWTError:
        return None
    if not isinstance(claims.get("userId"), str):
        return None
    return claims
