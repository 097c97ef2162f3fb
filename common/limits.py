"""Limits against abuse (docs/production.md "Limits against abuse"): the counters, with no transport in them.

- Failed logins (`login_attempt`): fixed-window counters in Django's cache `CACHES["limits"]` — local
  memory per process by default, Redis shared by every worker when REDIS_URL is set. accounts.services
  (/auth/login) and accounts.admin (the admin's login form) call it, with the same counters, before any
  password is hashed.
- Messages per socket (`MessageRate`): a token bucket, and at most one warning a second.
- Sign-ups per client address (`signup_attempt`): a fixed window in the same cache.
- Open sockets per user and per client address in this process (`open_sockets`, `open_sockets_per_ip`).

A limit set to 0 is off. The transports only map what these say: HTTP answers TooManyRequests with 429 and
Retry-After (common.api); the WebSocket consumer sends its ERROR (live.consumers).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest

from common import messages
from common.errors import TooManyRequests

logger = logging.getLogger(__name__)

# Retry-After is 1–900 whole seconds for every limit (docs/api.md). A sign-up window is an hour: a client
# told to come back within 900 s may be refused again then, with the time that is left.
RETRY_AFTER_MAX_SECONDS = 900
SIGNUP_WINDOW_SECONDS = 3600  # SIGNUPS_PER_IP counts sign-ups per hour
# A counter outlives its window by this much, so that an attempt that began just before the window ended
# can still give its count back.
KEY_GRACE_SECONDS = 60


# --- the client ------------------------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str:
    """The address limits count against: REMOTE_ADDR, which Daphne fills from the socket's peer — or, with
    PROXY_HEADERS on, from the last X-Forwarded-For hop (server.daphne_limits: the hop our own
    proxy added, not the first, which the client can write)."""
    return request.META.get("REMOTE_ADDR") or "unknown"


def scope_client_ip(scope: Mapping[str, Any]) -> str | None:
    """The same address for an ASGI scope (a WebSocket's): `scope["client"]`, where Django's REMOTE_ADDR
    comes from, set by Daphne by the same rule. None if the server names no client (Daphne always does
    over TCP; in-process test clients do not): a limit per address has nothing to count against then,
    rather than lumping every such client into one."""
    client = scope.get("client")
    return str(client[0]) if client and client[0] else None


# --- failed logins: fixed windows in the cache -------------------------------------------------------


@dataclass(frozen=True)
class FixedWindow:
    """At most `limit` counted events per subject in each window of `seconds`.

    Why fixed windows: Django's cache offers one atomic operation, `incr`, and a fixed window needs no
    other; and the time until a window ends is known exactly, so Retry-After tells the truth — a client
    that waits that long is let through. The price: around a window's boundary up to twice the limit can
    pass within a short time (never more in any span of `seconds`). Each subject's windows are offset by
    a hash of the subject, so that locked-out clients do not all come back at the same second.
    """

    name: str
    limit: int
    seconds: int

    def slot(self, subject: str, now: float) -> tuple[str, float]:
        """The cache key of `subject`'s current window, and when that window ends."""
        digest = hashlib.sha256(f"{self.name}\0{subject}".encode()).digest()
        offset = int.from_bytes(digest[:4], "big") % self.seconds
        index = math.floor((now - offset) / self.seconds)
        # Hashed: no email or address in clear in the cache, and a key any cache backend accepts.
        return f"{self.name}:{digest[4:20].hex()}:{index}", (index + 1) * self.seconds + offset


class Attempt:
    """Counts one attempt holds on each limit while it is checked (`with attempt:`): given back when the
    block ends, unless `failed()` was called — only failures stay counted."""

    def __init__(self, cache: Any, keys: list[str]) -> None:
        self.cache = cache
        self.keys = keys
        self.is_failure = False

    def failed(self) -> None:
        """Keep this attempt's counts (a failed login; any sign-up)."""
        self.is_failure = True

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if not self.is_failure:
            _give_back(self.cache, self.keys)


def reserve(checks: list[tuple[FixedWindow, str]], *, cache: Any = None, now: float | None = None) -> Attempt:
    """Count one attempt against each (window, subject); raise TooManyRequests if any is over its limit.

    The count is taken before the attempt is checked, so concurrent attempts (threads, workers) cannot
    together pass a limit: each sees the others in flight. A refused attempt gives its counts back (429s do
    not count). If the cache fails (Redis down), the attempt is let through and the failure logged: the
    limits guard against abuse, and must not lock everybody out.
    """
    cache = cache if cache is not None else caches[settings.LIMITS_CACHE]
    now = time.time() if now is None else now
    held: list[str] = []
    retry_after = 0
    try:
        for window, subject in checks:
            if window.limit <= 0:
                continue  # off
            key, ends = window.slot(subject, now)
            count = _increment(cache, key, math.ceil(ends - now) + KEY_GRACE_SECONDS)
            held.append(key)
            if count > window.limit:
                retry_after = max(retry_after, math.ceil(ends - now))
    except Exception:
        logger.warning("The limits cache failed; this attempt is not limited", exc_info=True)
        _give_back(cache, held)
        return Attempt(cache, [])
    if retry_after:
        _give_back(cache, held)
        raise TooManyRequests(messages.TOO_MANY_REQUESTS, min(max(retry_after, 1), RETRY_AFTER_MAX_SECONDS))
    return Attempt(cache, held)


def login_subject(email: str) -> str:
    """How the failed-login limits name an email, whichever door it came through (/auth/login, the admin)."""
    return email.strip().lower()


def login_attempt(email: str, ip: str) -> Attempt:
    """A login attempt by `email` from `ip`, counted against the failed-login limits (per email and address,
    per address) before its password is checked: raises TooManyRequests when either is reached."""
    seconds = settings.LOGIN_FAILURE_WINDOW_SECONDS
    return reserve(
        [
            (FixedWindow("login-email", settings.LOGIN_FAILURES_PER_EMAIL, seconds), f"{login_subject(email)}\0{ip}"),
            (FixedWindow("login-ip", settings.LOGIN_FAILURES_PER_IP, seconds), ip),
        ]
    )


def signup_attempt(ip: str) -> None:
    """Count one sign-up from `ip` against SIGNUPS_PER_IP (an hour's window), before any password is hashed:
    raises TooManyRequests when the address is over it (that refusal is not counted)."""
    reserve([(FixedWindow("signup-ip", settings.SIGNUPS_PER_IP, SIGNUP_WINDOW_SECONDS), ip)]).failed()


def _increment(cache: Any, key: str, timeout: int) -> int:
    """Atomically add one to `key`, creating it with `timeout` (an increment keeps the expiry)."""
    for _ in range(3):
        if cache.add(key, 1, timeout):
            return 1
        try:
            return int(cache.incr(key))
        except ValueError:  # expired between add and incr: add again
            continue
    raise RuntimeError(f"could not increment {key}")


def _give_back(cache: Any, keys: list[str]) -> None:
    for key in keys:
        try:
            cache.decr(key)
        except ValueError:
            pass  # already expired
        except Exception:
            logger.warning("The limits cache failed; a count was not given back", exc_info=True)


# --- messages per socket: a token bucket ---------------------------------------------------------------


class TokenBucket:
    """`burst` tokens, refilled continuously at `per_second` up to `burst`; each message takes one."""

    __slots__ = ("burst", "per_second", "tokens", "updated", "clock")

    def __init__(self, burst: float, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.per_second = per_second
        self.tokens = float(burst)
        self.clock = clock
        self.updated = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class MessageRate:
    """One socket's message limit: `allow()` for each frame; when a frame is refused, `warn()` says whether
    to tell the client (at most once a second, so that refusing a flood does not answer it with one)."""

    WARN_INTERVAL_SECONDS = 1.0

    __slots__ = ("bucket", "clock", "warned_at")

    def __init__(self, burst: float, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.bucket = TokenBucket(burst, per_second, clock) if burst > 0 and per_second > 0 else None
        self.clock = clock
        self.warned_at = -math.inf

    @classmethod
    def from_settings(cls) -> MessageRate:
        return cls(settings.WS_RATE_BURST, settings.WS_RATE_PER_SECOND)

    def allow(self) -> bool:
        return self.bucket is None or self.bucket.take()

    def warn(self) -> bool:
        now = self.clock()
        if now - self.warned_at < self.WARN_INTERVAL_SECONDS:
            return False
        self.warned_at = now
        return True


# --- open sockets per user and per client address, in this process -------------------------------------------


class SocketSlots:
    """Who holds a slot: holder (a user id, or a client address) → their sockets. Plain dict updates on the
    event loop thread, so `release` completes on every exit path, a cancelled consumer included.
    `setting` names the cap, read at each acquire (so that it can change under tests)."""

    def __init__(self, setting: str = "WS_MAX_SOCKETS_PER_USER") -> None:
        self.setting = setting
        self.by_user: dict[str, set[str]] = {}  # holder → sockets (named for the first holders: users)
        self.user_of: dict[str, str] = {}  # socket → holder

    def acquire(self, user_id: str, socket_id: str, limit: int | None = None) -> bool:
        """Take a slot for `socket_id`, unless `user_id` already holds `limit` (0: no limit)."""
        cap: int = getattr(settings, self.setting) if limit is None else limit
        held = self.by_user.setdefault(user_id, set())
        if socket_id in held:
            return True
        if cap > 0 and len(held) >= cap:
            if not held:
                del self.by_user[user_id]
            return False
        held.add(socket_id)
        self.user_of[socket_id] = user_id
        return True

    def release(self, socket_id: str) -> None:
        """Give the socket's slot back (nothing if it holds none)."""
        user_id = self.user_of.pop(socket_id, None)
        if user_id is None:
            return
        held = self.by_user.get(user_id)
        if held is not None:
            held.discard(socket_id)
            if not held:
                del self.by_user[user_id]

    def count(self, user_id: str) -> int:
        return len(self.by_user.get(user_id, ()))


open_sockets = SocketSlots("WS_MAX_SOCKETS_PER_USER")  # this process's, per user
open_sockets_per_ip = SocketSlots("WS_MAX_SOCKETS_PER_IP")  # this process's, per client address
