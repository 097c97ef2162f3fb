"""Live sessions in Redis, shared by every server process (chosen when settings.REDIS_URL is set).

Keys, under a prefix (settings.REDIS_KEY_PREFIX, default "live"):

    <prefix>:session:<teacher_id>           hash: "teacher_id", "class_id", "started_at", and one field
                                            "m:<student_id>" → status per mark. A teacher's active session.
    <prefix>:class:<class_id>               string: the class's teacher id, so that a student's classes lead
                                            to their sessions. Never trusted alone: a session counts for a
                                            class only if the session hash's class_id is that class, so an
                                            entry left behind by a replaced or finished session is harmless
                                            and simply expires.
    <prefix>:claimed:<teacher_id>:<token>   hash: a session taken by `claim` (plus "parked" once parked),
                                            kept until it is released (persisted) or restored, or for the
                                            session TTL: a claim the client retries (lost reply) gets the same
                                            answer, and if the process dies between claiming and persisting
                                            (DONE), the marks are still here for recovery.
    <prefix>:claims                         sorted set: every claimed key, scored by its lease deadline (ms,
                                            Redis' own clock, so workers' clocks need not agree). Recovery
                                            takes the members whose deadline has passed.

Atomicity: every operation is one Lua script (or one command), and Redis runs a script with no other
command in between, across every process and connection. So a mark applies only to the very run it
names (class_id and started_at compared inside the script), two marks never lose each other (each is
one HSET on the hash), and of any number of concurrent claims exactly one finds the hash and renames
it away; the others find nothing.

Expiry: the session hash and its class entry get a TTL of settings.SESSION_TTL_SECONDS (default 12 h),
set on start and restore and pushed back on every mark, so an abandoned session disappears on its own.

The write scripts touch only the keys they are given; `for_classes` reads the session hashes named by
the class entries, inside one script for a consistent snapshot. That is fine on a single Redis server
(or a Sentinel-managed one), which is also what channels-redis' RedisChannelLayer uses, not Redis Cluster.

redis.asyncio connections belong to the event loop that opened them, and this store is called from
Daphne's loop, from sync views through async_to_sync (on Daphne's loop, or on a fresh loop outside a
server) and from tests' loops; so it keeps one client per running loop.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from django.conf import settings
from redis.commands.core import AsyncScript

from common.loops import PerLoop
from common.redis_client import redis_retry
from live.store import Session, SessionStore, claim_lease_seconds

MARK_PREFIX = "m:"

MAX_CONNECTIONS = 50  # per event loop, that is per process
POOL_TIMEOUT_SECONDS = 10

# KEYS: session, class entry. ARGV: teacher_id, class_id, started_at, ttl_ms, then mark field/status pairs.
# Writes a whole session and gives both keys the TTL.
WRITE_SESSION = """
redis.call('HSET', KEYS[1], 'teacher_id', ARGV[1], 'class_id', ARGV[2], 'started_at', ARGV[3])
for i = 5, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])
return 1
"""

# Replaces any earlier session of the teacher (its marks go with it).
START = "redis.call('DEL', KEYS[1])" + WRITE_SESSION

# KEYS: session, class entry. ARGV: teacher_id, class_id, started_at, ttl_ms, field, status.
# Applies only if the stored session is still the same run; returns the updated hash, or nil.
MARK = """
local run = redis.call('HMGET', KEYS[1], 'class_id', 'started_at')
if run[1] ~= ARGV[2] or run[2] ~= ARGV[3] then
  return nil
end
redis.call('HSET', KEYS[1], ARGV[5], ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])
return redis.call('HGETALL', KEYS[1])
"""

# Redis' clock in milliseconds (scripts may read it: Redis replicates their effects, not the script).
NOW_MS = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
"""

# KEYS: session, claimed copy (unique per claim call), claims index. ARGV: keep_ms, lease_ms.
# Moves the session away and returns it; a retry of the same call returns the same session again.
CLAIM = NOW_MS + """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.call('HGETALL', KEYS[2])
end
local session = redis.call('HGETALL', KEYS[1])
if #session == 0 then
  return nil
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), KEYS[2])
return session
"""

# KEYS: session, class entry, claimed copy, claims index. ARGV as START.
# Puts a claimed session back unless the teacher has one; the claim goes. Repeated after a lost reply, it
# answers the same: the claim is gone and the very run is active again.
RESTORE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  local run = redis.call('HMGET', KEYS[1], 'class_id', 'started_at')
  if redis.call('EXISTS', KEYS[3]) == 0 and redis.call('ZSCORE', KEYS[4], KEYS[3]) == false
     and run[1] == ARGV[2] and run[2] == ARGV[3] and string.sub(KEYS[3], -2) ~= ':-' then
    return 1
  end
  return 0
end
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], KEYS[3])
""" + WRITE_SESSION

# KEYS: claimed copy, claims index.
RELEASE = """
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
return 1
"""

# KEYS: claimed copy, claims index. ARGV: retry_ms.
PARK = NOW_MS + """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], 'parked', '1')
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), KEYS[1])
return 1
"""

# KEYS: claims index. ARGV: limit, lease_ms.
# The claims whose lease ran out, each leased anew: a flat list of claimed key, hash (as HGETALL), ...
TAKE_STALE = NOW_MS + """
local found = {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))) do
  local claimed = redis.call('HGETALL', key)
  if #claimed == 0 then
    redis.call('ZREM', KEYS[1], key)  -- expired with the session TTL
  else
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), key)
    table.insert(found, key)
    table.insert(found, claimed)
  end
end
return found
"""

# KEYS: class entries. ARGV: the session key prefix ("<prefix>:session:").
# For each class, the hash of the session its entry points to (empty when there is none).
FOR_CLASSES = """
local found = {}
for i, class_key in ipairs(KEYS) do
  local teacher_id = redis.call('GET', class_key)
  if teacher_id then
    found[i] = redis.call('HGETALL', ARGV[1] .. teacher_id)
  else
    found[i] = {}
  end
end
return found
"""


@dataclass
class _Connection:
    """A client and its scripts, for one event loop."""

    client: aioredis.Redis
    start: AsyncScript
    mark: AsyncScript
    claim: AsyncScript
    restore: AsyncScript
    release: AsyncScript
    park: AsyncScript
    take_stale: AsyncScript
    for_classes: AsyncScript


def _fields(reply: Sequence[str] | dict[str, str] | None) -> dict[str, str]:
    """A hash as HGETALL returns it: a dict from the client, a flat list from a script."""
    if not reply:
        return {}
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


def _session(reply: Sequence[str] | dict[str, str] | None, claim: str | None = None) -> Session | None:
    fields = _fields(reply)
    if "class_id" not in fields:
        return None
    return Session(
        teacher_id=fields["teacher_id"],
        class_id=fields["class_id"],
        started_at=fields["started_at"],
        attendance={name[len(MARK_PREFIX) :]: value for name, value in fields.items() if name.startswith(MARK_PREFIX)},
        claim=claim,
        parked=fields.get("parked") == "1",
    )


class RedisSessionStore(SessionStore):
    """Sessions in Redis: the same semantics as InMemorySessionStore, shared by every process."""

    def __init__(self, url: str | None = None, *, prefix: str | None = None, ttl_seconds: float | None = None) -> None:
        self.url = url or settings.REDIS_URL
        if not self.url:
            raise ValueError("RedisSessionStore needs a Redis URL (settings.REDIS_URL)")
        self.prefix = prefix if prefix is not None else getattr(settings, "REDIS_KEY_PREFIX", "live")
        ttl = ttl_seconds if ttl_seconds is not None else settings.SESSION_TTL_SECONDS
        self.ttl_ms = int(ttl * 1000)
        if self.ttl_ms <= 0:
            raise ValueError("the session TTL must be positive")
        # One client per event loop: an asyncio connection cannot be used from another loop.
        self._connections: PerLoop[_Connection] = PerLoop(self._connect)

    # --- keys ----------------------------------------------------------------------------------

    def session_key(self, teacher_id: str) -> str:
        return f"{self.prefix}:session:{teacher_id}"

    def class_key(self, class_id: str) -> str:
        return f"{self.prefix}:class:{class_id}"

    def claimed_key(self, teacher_id: str, token: str) -> str:
        return f"{self.prefix}:claimed:{teacher_id}:{token}"

    @property
    def claims_key(self) -> str:
        return f"{self.prefix}:claims"

    def _claim_keys(self, session: Session) -> list[str]:
        """The claimed copy of `session` (a name that exists nowhere if it is not a claimed one) and the index."""
        return [self.claimed_key(session.teacher_id, session.claim or "-"), self.claims_key]

    # --- connections -----------------------------------------------------------------------------

    def _connection(self) -> _Connection:
        # Loops that async_to_sync created and closed leave clients nobody can use again: PerLoop drops them.
        return self._connections.get()

    def _connect(self) -> _Connection:
        # A blocking pool: a burst of events waits for a free connection instead of failing
        # with "Too many connections" as the default pool does.
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_TIMEOUT_SECONDS,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=10,
            socket_keepalive=True,
            retry=redis_retry(),  # every script here is safe to repeat
        )
        client = aioredis.Redis.from_pool(pool)
        return _Connection(
            client=client,
            start=client.register_script(START),
            mark=client.register_script(MARK),
            claim=client.register_script(CLAIM),
            restore=client.register_script(RESTORE),
            release=client.register_script(RELEASE),
            park=client.register_script(PARK),
            take_stale=client.register_script(TAKE_STALE),
            for_classes=client.register_script(FOR_CLASSES),
        )

    async def aclose(self) -> None:
        """Close the client of the running loop (tests; servers just exit)."""
        connection = self._connections.pop()
        if connection is not None:
            await connection.client.aclose()

    def _session_args(self, session: Session) -> list[str]:
        args = [session.teacher_id, session.class_id, session.started_at, str(self.ttl_ms)]
        for student_id, status in session.attendance.items():
            args += [MARK_PREFIX + student_id, status]
        return args

    # --- SessionStore ------------------------------------------------------------------------------

    async def start(self, session: Session) -> None:
        await self._connection().start(
            keys=[self.session_key(session.teacher_id), self.class_key(session.class_id)],
            args=self._session_args(session),
        )

    async def for_teacher(self, teacher_id: str) -> Session | None:
        # decode_responses=True: the client returns str, though its types say bytes | str.
        fields: dict[str, str] = await self._connection().client.hgetall(self.session_key(teacher_id))  # type: ignore[assignment]
        return _session(fields)

    async def for_classes(self, class_ids: Iterable[str]) -> list[Session]:
        class_ids = list(class_ids)
        if not class_ids:
            return []
        replies = await self._connection().for_classes(
            keys=[self.class_key(c) for c in class_ids], args=[f"{self.prefix}:session:"]
        )
        found = [
            session
            for class_id, reply in zip(class_ids, replies, strict=True)
            if (session := _session(reply)) is not None and session.class_id == class_id
        ]
        return sorted(found, key=lambda s: s.started_at, reverse=True)

    async def mark(self, session: Session, student_id: str, status: str) -> Session | None:
        reply = await self._connection().mark(
            keys=[self.session_key(session.teacher_id), self.class_key(session.class_id)],
            args=[
                session.teacher_id,
                session.class_id,
                session.started_at,
                str(self.ttl_ms),
                MARK_PREFIX + student_id,
                status,
            ],
        )
        return _session(reply)

    async def claim(self, teacher_id: str) -> Session | None:
        return await self._claim(teacher_id, secrets.token_hex(8))

    async def _claim(self, teacher_id: str, token: str) -> Session | None:
        """One claim; `token` names it, so that running it again (a retry) answers the same."""
        reply = await self._connection().claim(
            keys=[self.session_key(teacher_id), self.claimed_key(teacher_id, token), self.claims_key],
            args=[str(self.ttl_ms), str(int(claim_lease_seconds() * 1000))],
        )
        return _session(reply, claim=token)

    async def restore(self, session: Session) -> bool:
        restored = await self._connection().restore(
            keys=[self.session_key(session.teacher_id), self.class_key(session.class_id), *self._claim_keys(session)],
            args=self._session_args(session),
        )
        return bool(restored == 1)

    async def release(self, session: Session) -> None:
        await self._connection().release(keys=self._claim_keys(session))

    async def park(self, session: Session, retry_in: float) -> None:
        await self._connection().park(keys=self._claim_keys(session), args=[str(int(retry_in * 1000))])

    async def take_stale_claims(self, limit: int = 100) -> list[Session]:
        reply = await self._connection().take_stale(
            keys=[self.claims_key], args=[str(limit), str(int(claim_lease_seconds() * 1000))]
        )
        found = []
        for key, fields in zip(reply[::2], reply[1::2], strict=True):
            session = _session(fields, claim=key.rsplit(":", 1)[1])
            if session is not None:
                found.append(session)
        return found
