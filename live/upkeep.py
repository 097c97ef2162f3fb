"""Periodic work of a process with open sockets: sockets follow their accounts, claims left by a dead
worker (no transactions) are recovered and idle sessions expired (docs/production.md "What survives what").

One task per event loop, started by the first socket and stopped when the process has none left (like the
hub, so that nothing outlives its loop). Every UPKEEP_SECONDS, with jitter so that workers do not beat in step:

- the users of this process's sockets are looked up in one query; sockets of a user who was deleted or
  deactivated are closed (notices from live.notify close them at once; this catches what a notice missed);
- `live.commands.recover_claims` gives claims whose lease ran out back to live (standalone MongoDB);
- `live.commands.expire_sessions` ends live sessions idle for SESSION_TTL_SECONDS;
- `live.commands.close_ended_windows` closes check-in windows past their end (a teacher's open socket closes its
  own at once; this catches those without one) and those of sessions no longer live.

A token's expiry needs no sweep: each socket closes itself when its token expires (live.consumers).

And, in the production server only (server.serve turns it on), the objects of open sockets are kept
out of the garbage collector's full passes, and none is made while a burst of sockets connects
(`freeze_after_connects`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
from typing import Any

from django.conf import settings

from accounts.models import User
from common.limits import open_sockets
from common.loops import PerLoop
from live import commands
from live.db import db_call
from live.hub import get_hub

logger = logging.getLogger(__name__)

USER_GROUP_PREFIX = "user."


def active_user_roles(user_ids: list[str]) -> dict[str, str]:
    """The role of each of these users who is still active."""
    return dict(User.objects.filter(pk__in=user_ids, is_active=True).values_list("id", "role"))


async def check_accounts() -> int:
    """Close the sockets of users who are gone or whose role changed; returns how many sockets were closed."""
    hub = get_hub()
    by_user = {
        group[len(USER_GROUP_PREFIX) :]: hub.local_members(group)
        for group in list(hub.members)
        if group.startswith(USER_GROUP_PREFIX)
    }
    if not by_user:
        return 0
    roles = await db_call(active_user_roles)(list(by_user))
    closed = 0
    for user_id, members in by_user.items():
        for member in members:
            # A socket acts with the role it connected with: one whose role changed since is closed too (a
            # socket still connecting has no user yet; it reads the account after joining its user's group).
            user = getattr(member, "user", None)
            if user_id not in roles or (user is not None and user.role != roles[user_id]):
                await member.on_group_message({"kind": "revoke"})
                closed += 1
    return closed


async def recover_claims() -> int:
    return await db_call(commands.recover_claims)()


async def expire_sessions() -> int:
    return await db_call(commands.expire_sessions)()


async def close_checkin_windows() -> int:
    return await db_call(commands.close_ended_windows)()


# --- garbage collection ---------------------------------------------------------------------------------
# A socket is some hundred long-lived objects (Twisted's and Autobahn's protocol, the consumer, its task). With
# thousands open, every full collection walks all of them: at 5,000 sockets one in two broadcasts was hit by a
# pause of several hundred ms (docs/benchmark.md). Once a burst of connects has settled, the survivors are
# frozen (gc.freeze: out of every collection, freed by reference counting as usual); once half of the sockets
# frozen have closed, everything is unfrozen, so that cycles left by closed sockets are collected again.
# During the burst itself no full pass is made: the objects of the sockets connecting are the very ones a full
# pass would walk again and again as they pile up (three full passes of 100-130 ms each in a burst of 2,000, a
# fifth of its CPU: docs/benchmark.md). The young generations are still collected, so a connect's short-lived
# cycles (~57 objects each) are freed as they go. Deferred for about BURST_GC_PAUSE_SECONDS at most (checked
# when the quiet timer fires), so that a server whose connects never stop for a second still makes full passes.

FREEZE_QUIET_SECONDS = 1.0
BURST_GC_PAUSE_SECONDS = 5.0
NO_FULL_PASS = 1_000_000_000  # the oldest generation's threshold while deferred: young collections, never a full one


class _Freezer:
    enabled = False
    burst_started = 0.0
    last_connect = 0.0
    timer: asyncio.TimerHandle | None = None
    # The oldest generation's threshold before a burst, while its full passes are deferred (None: not deferred).
    saved_oldest: int | None = None
    frozen_sockets = 0  # open sockets when last frozen (0: nothing of ours frozen)


def freeze_after_connects(enabled: bool = True) -> None:
    """Defer the collector's full passes during each burst of connects and freeze the objects of open sockets
    after it (server.serve)."""
    _Freezer.enabled = enabled


def _note_connect(loop: asyncio.AbstractEventLoop) -> None:
    if not _Freezer.enabled:
        return
    _Freezer.last_connect = loop.time()
    if _Freezer.timer is None:  # a burst begins
        _Freezer.burst_started = _Freezer.last_connect
        _defer_full_passes()
        _Freezer.timer = loop.call_later(FREEZE_QUIET_SECONDS, _freeze_when_quiet, loop)


def _freeze_when_quiet(loop: asyncio.AbstractEventLoop) -> None:
    now = loop.time()
    quiet_since = now - _Freezer.last_connect
    if quiet_since < FREEZE_QUIET_SECONDS:
        if now - _Freezer.burst_started >= BURST_GC_PAUSE_SECONDS:
            _restore_full_passes()  # a long burst: full passes as usual until it settles
        _Freezer.timer = loop.call_later(FREEZE_QUIET_SECONDS - quiet_since, _freeze_when_quiet, loop)
        return
    _Freezer.timer = None
    gc.collect()  # one full pass now, at a quiet moment, so that no garbage is frozen with the sockets
    gc.freeze()
    _restore_full_passes()
    _Freezer.frozen_sockets = len(open_sockets.user_of)


def _defer_full_passes() -> None:
    """Defer full collections (the young generations go on)."""
    if _Freezer.saved_oldest is None:
        young, middle, _Freezer.saved_oldest = gc.get_threshold()
        gc.set_threshold(young, middle, NO_FULL_PASS)


def _restore_full_passes() -> None:
    """The oldest generation's threshold as it was, unless someone else has set another since (the young ones
    are left as they are now)."""
    saved, _Freezer.saved_oldest = _Freezer.saved_oldest, None
    young, middle, oldest = gc.get_threshold()
    if saved is not None and oldest == NO_FULL_PASS:
        gc.set_threshold(young, middle, saved)


def _unfreeze_if_mostly_closed() -> None:
    if _Freezer.frozen_sockets and len(open_sockets.user_of) < _Freezer.frozen_sockets / 2:
        gc.unfreeze()
        _Freezer.frozen_sockets = 0


async def _run() -> None:
    interval = settings.LIVE_UPKEEP_SECONDS
    while get_hub().members:
        await asyncio.sleep(interval * random.uniform(0.8, 1.2))
        _unfreeze_if_mostly_closed()
        for job in (check_accounts, recover_claims, expire_sessions, close_checkin_windows):
            try:
                await job()
            except Exception:
                logger.exception("Upkeep job %s failed", job.__name__)


_tasks: PerLoop[asyncio.Task[Any]] = PerLoop()


def ensure_running() -> None:
    """Start this loop's upkeep if it is not running (called by every socket that connects)."""
    loop = asyncio.get_running_loop()
    _note_connect(loop)
    task = _tasks.peek()
    if task is None or task.done():
        _tasks.set(loop.create_task(_run(), name="live-upkeep"))
