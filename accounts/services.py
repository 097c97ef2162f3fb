"""Sign-up and log-in rules."""

from __future__ import annotations

import functools

from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction

from accounts.models import Role, User
from accounts.schemas import LoginBody, Member, SignupBody
from accounts.tokens import issue_token
from common import limits, messages
from common.errors import Conflict, Invalid

# Compared against when the email is unknown, so both failures cost one bcrypt check.
_DUMMY_HASH: str | None = None


def signup(body: SignupBody, client_ip: str) -> User:
    """A new account, for a client at `client_ip`.

    Every sign-up counts against SIGNUPS_PER_IP (common.limits), checked before anything else, so that a
    flood costs no password hashing and probes no emails once over it."""
    limits.signup_attempt(client_ip)  # TooManyRequests here
    if User.objects.filter(email=body.email).exists():
        raise Conflict(messages.EMAIL_EXISTS)
    user = User(name=body.name, email=body.email, role=body.role)
    user.set_password(body.password)
    try:
        # The unique index settles two sign-ups racing for one email.
        with transaction.atomic():
            user.save(force_insert=True)
    except IntegrityError:
        raise Conflict(messages.EMAIL_EXISTS) from None
    return user


def login(body: LoginBody, client_ip: str) -> str:
    """A token for the email and password, from a client at `client_ip`.

    The failed-login limits (common.limits) are checked first, before any password is hashed, so a
    flood of wrong passwords costs no bcrypt work once over them; only a wrong email or password counts.
    """
    global _DUMMY_HASH
    with limits.login_attempt(body.email, client_ip) as attempt:  # TooManyRequests here
        user = User.objects.filter(email=body.email, is_active=True).first()
        if user is None:
            if _DUMMY_HASH is None:
                _DUMMY_HASH = make_password("not-a-real-password")
            check_password(body.password, _DUMMY_HASH)
        if user is None or not user.check_password(body.password):
            attempt.failed()
            raise Invalid(messages.BAD_CREDENTIALS)
        return issue_token(user.id, user.role)


def list_students() -> list[Member]:
    rows = User.objects.filter(role=Role.STUDENT).order_by("id").values_list("id", "name", "email")
    return [member(pk, name, email) for pk, name, email in rows]


# Bounded: at about 400 bytes an entry, some 6 MiB at most.
@functools.lru_cache(maxsize=16384)
def member(pk: str, name: str, email: str) -> Member:
    """A student as a class or the student list shows them, validated once per (id, name, email).

    Member is frozen, so one instance serves every response that shows the student as they are now; a renamed
    student is another key. A class of 1,000 opens at the start of every lesson, each student loading it:
    validating its 1,000 members each time was most of GET /class/:id (1.6 ms, against 0.06 ms for the
    class's response built from remembered members; docs/benchmark.md, "HTTP")."""
    return Member.model_validate({"id": pk, "name": name, "email": email})
