"""Periodic work of a process with open sockets: sockets follow their accounts, and claims left by a dead
worker are settled (DESIGN.md "Faults").

One task per event loop, started by the first socket and stopped when the process has none left (like the
hub, so that nothing outlives its loop). Every UPKEEP_SECONDS, with jitter so that workers do not beat in step:

- the users of this process's sockets are looked up in one query; sockets of a user who was deleted or
  deactivated are closed (notices from live.notify close them at once; this catches what a notice missed);
- `live.services.recover_claims` settles claims whose lease ran out.

A token's expiry needs no sweep: each socket closes itself when its token expires (live.consumers).
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from typing import Any

from django.conf import settings

from accounts.models import User
from live import services
from live.db import db_call
from live.hub import get_hub

logger = logging.getLogger(__name__)

USER_GROUP_PREFIX = "user."


def active_user_ids(user_ids: list[str]) -> set[str]:
    return set(User.objects.filter(pk__in=user_ids, is_active=True).values_list("id", flat=True))


async def check_accounts() -> int:
    """Close the sockets of users who are gone; returns how many sockets were closed."""
    hub = get_hub()
    by_user = {
        group[len(USER_GROUP_PREFIX) :]: hub.local_members(group)
        for group in list(hub.members)
        if group.startswith(USER_GROUP_PREFIX)
    }
    if not by_user:
        return 0
    active = await db_call(active_user_ids)(list(by_user))
    closed = 0
    for user_id, members in by_user.items():
        if user_id not in active:
            for member in members:
                await member.on_group_message({"kind": "revoke"})
                closed += 1
    return closed


async def _run() -> None:
    interval = settings.LIVE_UPKEEP_SECONDS
    while get_hub().members:
        await asyncio.sleep(interval * random.uniform(0.8, 1.2))
        for job in (check_accounts, services.recover_claims):
            try:
                await job()
            except Exception:
                logger.exception("Upkeep job %s failed", job.__name__)


_tasks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[Any]] = weakref.WeakKeyDictionary()


def ensure_running() -> None:
    """Start this loop's upkeep if it is not running (called by every socket that connects)."""
    loop = asyncio.get_running_loop()
    task = _tasks.get(loop)
    if task is None or task.done():
        _tasks[loop] = loop.create_task(_run(), name="live-upkeep")
