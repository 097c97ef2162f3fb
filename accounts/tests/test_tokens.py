"""accounts.tokens: a token's signature is checked once and its claims remembered, and what was remembered is
still refused once it expires, or under another secret; a token that failed is checked again each time."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import jwt
import pytest

from accounts import tokens
from tests.support import forge_token

SECRET = "a-secret-long-enough-for-hs256-tokens-0123456789"
USER = "6b1562f77e46f34e8908c045"


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch, settings: Any) -> list[str]:
    """The tokens PyJWT decodes from now on (a fresh memory of verified tokens)."""
    settings.JWT_SECRET = SECRET
    tokens._verified.cache_clear()
    seen: list[str] = []
    decode = jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counted)
    yield seen
    tokens._verified.cache_clear()


def test_a_token_is_checked_once_and_its_claims_given_each_time(decodes: list[str]) -> None:
    token = forge_token(SECRET, user_id=USER, role="teacher")
    first = tokens.verify_token(token)
    assert first is not None and (first["userId"], first["role"]) == (USER, "teacher")
    first["role"] = "student"  # a caller's copy: what is remembered stays as signed
    assert tokens.verify_token(token) == {**first, "role": "teacher"}
    assert decodes == [token]


def test_a_remembered_token_is_refused_once_it_expires(decodes: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    token = forge_token(SECRET, user_id=USER, ttl=60)
    claims = tokens.verify_token(token)
    assert claims is not None
    monkeypatch.setattr(tokens, "time", SimpleNamespace(time=lambda: claims["exp"] - 1))
    assert tokens.verify_token(token) is not None
    monkeypatch.setattr(tokens, "time", SimpleNamespace(time=lambda: claims["exp"]))
    assert tokens.verify_token(token) is None
    assert decodes == [token]


def test_a_bad_token_is_checked_again_each_time(decodes: list[str]) -> None:
    forged = forge_token("another-secret-long-enough-for-hs256-0123456789", user_id=USER)
    expired = forge_token(SECRET, user_id=USER, age=7200, ttl=3600)
    no_user = forge_token(SECRET, user_id=USER, userId=None)
    numeric_user = forge_token(SECRET, user_id=USER, userId=7)
    for token in (forged, expired, no_user, numeric_user, "not.a.token"):
        assert tokens.verify_token(token) is None
        assert tokens.verify_token(token) is None
    assert len(decodes) == 10


def test_a_token_remembered_under_one_secret_is_refused_under_another(decodes: list[str], settings: Any) -> None:
    token = forge_token(SECRET, user_id=USER)
    assert tokens.verify_token(token) is not None
    settings.JWT_SECRET = "the-secret-was-rotated-long-enough-for-hs256-0123"
    assert tokens.verify_token(token) is None
    settings.JWT_SECRET = SECRET
    assert tokens.verify_token(token) is not None
    assert decodes == [token, token]


def test_the_expiry_is_read_as_pyjwt_reads_it(decodes: list[str]) -> None:
    """PyJWT takes an `exp` it can turn into an integer; so does the check of a remembered token."""
    soon = int(time.time()) + 600
    token = forge_token(SECRET, user_id=USER, exp=str(soon))
    assert tokens.verify_token(token) is not None
    assert tokens.verify_token(token) is not None
