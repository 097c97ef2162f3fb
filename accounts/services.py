"""Sign-up and log-in rules."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import cast

from django.contrib.auth.hashers import check_password, make_password
from django.db import IntegrityError, transaction
from pydantic import TypeAdapter

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
    return [
        Member(id=pk, name=name, email=email)
        for pk, name, email in User.objects.filter(role=Role.STUDENT).order_by("id").values_list("id", "name", "email")
    ]


class RememberedMembers:
    """Students as a class shows them, each validated once per (id, name, email).

    Member is frozen, so one instance serves every response that shows the student as they are now; a changed
    name or email is another key. A class of 1,000 opens at the start of every lesson, each of its students
    loading it: validating its 1,000 members was most of GET /class/:id (docs/benchmark.md, "HTTP"). Those not
    yet known are validated together, in one call into pydantic's core, as the whole class was before.

    At most `size` are kept, the oldest dropped first; an entry with its strings takes ~0.8 KiB (~2 KiB for the
    longest names and emails), so the default 8,192 holds ~6 MiB (~15 MiB at most) per process."""

    def __init__(self, size: int = 8192) -> None:
        self._size = size
        self._known: OrderedDict[tuple[str, str, str], Member] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, rows: list[tuple[str, str, str]]) -> list[Member]:
        known = self._known
        found = [known.get(row) for row in rows]
        missing = [row for row, seen in zip(rows, found, strict=True) if seen is None]
        if not missing:
            return cast(list[Member], found)
        fresh = dict(zip(missing, _MEMBERS.validate_python([_member_fields(row) for row in missing]), strict=True))
        with self._lock:
            known.update(fresh)
            while len(known) > self._size:
                known.popitem(last=False)
        return [seen if seen is not None else fresh[row] for row, seen in zip(rows, found, strict=True)]


def _member_fields(row: tuple[str, str, str]) -> dict[str, str]:
    pk, name, email = row
    return {"id": pk, "name": name, "email": email}


_MEMBERS = TypeAdapter(list[Member])
remembered_members = RememberedMembers()
