"""RedisSessionStore against a real Redis: the same semantics as InMemorySessionStore (the shared tests run
on both), atomic updates under concurrency, exclusive claims, and expiry.

Each test works under a key prefix of its own and deletes its keys afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable

import pytest
import redis
from asgiref.sync import async_to_sync
from django.utils.module_loading import import_string

from live.store import InMemorySessionStore, Session, SessionStore
from live.store_redis import RedisSessionStore
from live.tests.services_available import redis_url, require_redis

REDIS_URL = redis_url(15)
T0 = "2025-03-01T08:00:00.000Z"
T1 = "2025-03-01T09:00:00.000Z"
T2 = "2025-03-01T10:00:00.000Z"


def new_id() -> str:
    return secrets.token_hex(12)


def session(teacher_id: str, class_id: str, started_at: str = T0, **attendance: str) -> Session:
    return Session(teacher_id=teacher_id, class_id=class_id, started_at=started_at, attendance=attendance)


@pytest.fixture(scope="module")
def redis_up() -> None:
    require_redis(REDIS_URL)


@pytest.fixture
def redis_prefix(redis_up: None) -> AsyncIterator[str]:
    prefix = f"test-store-{secrets.token_hex(6)}"
    yield prefix
    with redis.Redis.from_url(REDIS_URL, socket_timeout=5) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
async def make_redis_store(redis_prefix: str) -> AsyncIterator[Callable[..., RedisSessionStore]]:
    """RedisSessionStores sharing this test's prefix, as separate processes would share Redis."""
    stores: list[RedisSessionStore] = []

    def make(ttl_seconds: float = 3600) -> RedisSessionStore:
        store = RedisSessionStore(REDIS_URL, prefix=redis_prefix, ttl_seconds=ttl_seconds)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.aclose()


@pytest.fixture
def raw(redis_up: None) -> redis.Redis:
    with redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=5) as client:
        yield client


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> SessionStore:
    """Each semantic test runs on both stores: the Redis one must behave as the in-memory one."""
    if request.param == "memory":
        return InMemorySessionStore()
    return request.getfixturevalue("make_redis_store")()


@pytest.fixture
def two_stores(request: pytest.FixtureRequest, store: SessionStore) -> tuple[SessionStore, SessionStore]:
    """Two handles on the same sessions: one object in memory; two clients (two "processes") on Redis."""
    if isinstance(store, RedisSessionStore):
        return store, request.getfixturevalue("make_redis_store")()
    return store, store


async def warm_up(*stores: SessionStore) -> None:
    """Open the Redis connections first, so that the calls under test really overlap instead of queueing
    behind connection set-up one after another."""
    await asyncio.wait_for(asyncio.gather(*(s.for_teacher(new_id()) for s in stores for _ in range(60))), 30)


# --- semantics, on both stores ---------------------------------------------------------------------


async def test_start_then_read(store: SessionStore) -> None:
    teacher, klass = new_id(), new_id()
    await store.start(session(teacher, klass))
    assert await store.for_teacher(teacher) == session(teacher, klass)
    assert await store.for_classes([klass]) == [session(teacher, klass)]
    assert await store.for_teacher(new_id()) is None


async def test_start_keeps_the_marks_it_is_given(store: SessionStore) -> None:
    teacher, klass, s1, s2 = new_id(), new_id(), new_id(), new_id()
    await store.start(session(teacher, klass, **{s1: "present", s2: "absent"}))
    assert (await store.for_teacher(teacher)).attendance == {s1: "present", s2: "absent"}


async def test_start_replaces_the_teachers_session(store: SessionStore) -> None:
    teacher, old_class, new_class, student = new_id(), new_id(), new_id(), new_id()
    await store.start(session(teacher, old_class, T0))
    await store.mark(session(teacher, old_class, T0), student, "present")
    await store.start(session(teacher, new_class, T1))
    assert await store.for_teacher(teacher) == session(teacher, new_class, T1)
    assert await store.for_classes([old_class]) == []
    assert await store.for_classes([old_class, new_class]) == [session(teacher, new_class, T1)]


async def test_restarting_the_same_class_empties_the_marks(store: SessionStore) -> None:
    teacher, klass, student = new_id(), new_id(), new_id()
    await store.start(session(teacher, klass, T0))
    await store.mark(session(teacher, klass, T0), student, "present")
    await store.start(session(teacher, klass, T1))
    assert await store.for_classes([klass]) == [session(teacher, klass, T1)]


async def test_for_classes_most_recent_first_and_only_those_asked(store: SessionStore) -> None:
    t1, t2, t3, c1, c2, c3 = (new_id() for _ in range(6))
    await store.start(session(t1, c1, T1))
    await store.start(session(t2, c2, T2))
    await store.start(session(t3, c3, T0))
    assert await store.for_classes([c3, c1, c2]) == [session(t2, c2, T2), session(t1, c1, T1), session(t3, c3, T0)]
    assert await store.for_classes({c1, c3, new_id()}) == [session(t1, c1, T1), session(t3, c3, T0)]
    assert await store.for_classes([]) == []
    assert await store.for_classes([new_id()]) == []


async def test_teachers_sessions_are_independent(store: SessionStore) -> None:
    t1, t2, c1, c2, student = (new_id() for _ in range(5))
    await store.start(session(t1, c1))
    await store.start(session(t2, c2))
    await store.mark(session(t1, c1), student, "present")
    assert await store.claim(t2) == session(t2, c2)
    assert await store.for_teacher(t1) == session(t1, c1, **{student: "present"})


async def test_mark_records_and_overwrites(store: SessionStore) -> None:
    teacher, klass, s1, s2 = new_id(), new_id(), new_id(), new_id()
    await store.start(session(teacher, klass))
    assert await store.mark(session(teacher, klass), s1, "present") == session(teacher, klass, **{s1: "present"})
    updated = await store.mark(session(teacher, klass), s2, "present")
    assert updated == session(teacher, klass, **{s1: "present", s2: "present"})
    # The caller's snapshot may be stale (no marks): the mark still applies to the current run.
    updated = await store.mark(session(teacher, klass), s1, "absent")
    assert updated == session(teacher, klass, **{s1: "absent", s2: "present"})
    assert await store.for_teacher(teacher) == updated
    assert await store.for_classes([klass]) == [updated]
    assert updated.counts() == {"present": 1, "absent": 1, "total": 2}


async def test_marks_leave_older_snapshots_alone_and_a_stale_snapshot_of_the_run_still_marks(
    store: SessionStore,
) -> None:
    teacher, klass = new_id(), new_id()
    started = session(teacher, klass)
    await store.start(started)
    one = await store.mark(started, "s1", "present")
    two = await store.mark(one, "s1", "absent")
    three = await store.mark(started, "s2", "present")  # an older snapshot of the same run
    assert (one.attendance, two.attendance) == ({"s1": "present"}, {"s1": "absent"})
    assert three.attendance == {"s1": "absent", "s2": "present"}
    assert started.attendance == {}
    assert await store.for_teacher(teacher) == three
    [live] = await store.for_classes([klass])
    assert live == three and live.counts() == {"present": 1, "absent": 1, "total": 2}


async def test_mark_refused_for_a_replaced_run(store: SessionStore) -> None:
    teacher, klass, other_class, student = new_id(), new_id(), new_id(), new_id()
    await store.start(session(teacher, klass, T0))
    await store.start(session(teacher, klass, T1))  # same class, new run
    assert await store.mark(session(teacher, klass, T0), student, "present") is None
    await store.start(session(teacher, other_class, T2))
    assert await store.mark(session(teacher, klass, T1), student, "present") is None
    assert await store.for_teacher(teacher) == session(teacher, other_class, T2)


async def test_mark_refused_without_a_session_and_does_not_create_one(store: SessionStore) -> None:
    teacher, klass, student = new_id(), new_id(), new_id()
    assert await store.mark(session(teacher, klass), student, "present") is None
    await store.start(session(teacher, klass))
    await store.claim(teacher)
    assert await store.mark(session(teacher, klass), student, "present") is None
    assert await store.for_teacher(teacher) is None
    assert await store.for_classes([klass]) == []


async def test_claim_takes_the_session_once(store: SessionStore) -> None:
    teacher, klass, student = new_id(), new_id(), new_id()
    await store.start(session(teacher, klass))
    await store.mark(session(teacher, klass), student, "absent")
    assert await store.claim(teacher) == session(teacher, klass, **{student: "absent"})
    assert await store.for_teacher(teacher) is None
    assert await store.for_classes([klass]) == []
    assert await store.claim(teacher) is None
    assert await store.claim(new_id()) is None


async def test_restore_puts_a_claimed_session_back(store: SessionStore) -> None:
    teacher, klass, student = new_id(), new_id(), new_id()
    await store.start(session(teacher, klass))
    await store.mark(session(teacher, klass), student, "present")
    claimed = await store.claim(teacher)
    assert await store.restore(claimed) is True
    assert await store.for_teacher(teacher) == claimed
    assert await store.for_classes([klass]) == [claimed]
    assert await store.mark(claimed, new_id(), "absent") is not None  # the same run again
    assert await store.claim(teacher) is not None


async def test_restore_refused_after_a_new_start(store: SessionStore) -> None:
    teacher, klass, other_class, student = new_id(), new_id(), new_id(), new_id()
    await store.start(session(teacher, klass, T0))
    await store.mark(session(teacher, klass, T0), student, "present")
    claimed = await store.claim(teacher)
    await store.start(session(teacher, other_class, T1))
    assert await store.restore(claimed) is False
    assert await store.for_teacher(teacher) == session(teacher, other_class, T1)
    assert await store.for_classes([klass]) == []
    # Also when the new run is of the same class.
    await store.claim(teacher)
    await store.start(session(teacher, klass, T2))
    assert await store.restore(claimed) is False
    assert await store.for_teacher(teacher) == session(teacher, klass, T2)


async def test_restore_refused_while_the_session_is_there(store: SessionStore) -> None:
    teacher, klass = new_id(), new_id()
    await store.start(session(teacher, klass))
    assert await store.restore(session(teacher, klass, T0, x="present")) is False
    assert await store.for_teacher(teacher) == session(teacher, klass)


# --- claims and their recovery, on both stores --------------------------------------------------------


@pytest.fixture
def short_lease(settings) -> float:
    settings.LIVE_CLAIM_LEASE_SECONDS = 0.3
    return 0.3


async def test_a_claim_is_named_and_leased(store: SessionStore, short_lease: float) -> None:
    teacher, klass = new_id(), new_id()
    await store.start(session(teacher, klass))
    claimed = await store.claim(teacher)
    assert claimed.claim and not claimed.parked
    assert await store.take_stale_claims() == []  # leased to its claimer
    await asyncio.sleep(short_lease + 0.2)
    stale = await store.take_stale_claims()
    assert stale == [claimed] and stale[0].claim == claimed.claim
    assert await store.take_stale_claims() == []  # leased anew to whoever took it


async def test_a_released_claim_is_gone(store: SessionStore, short_lease: float) -> None:
    teacher, klass = new_id(), new_id()
    await store.start(session(teacher, klass))
    claimed = await store.claim(teacher)
    await store.release(claimed)
    await asyncio.sleep(short_lease + 0.2)
    assert await store.take_stale_claims() == []
    await store.release(claimed)  # twice: harmless
    assert await store.for_teacher(teacher) is None


async def test_a_restored_claim_is_gone(store: SessionStore, short_lease: float) -> None:
    teacher, klass, student = new_id(), new_id(), new_id()
    await store.start(session(teacher, klass, **{student: "present"}))
    claimed = await store.claim(teacher)
    assert await store.restore(claimed) is True
    await asyncio.sleep(short_lease + 0.2)
    assert await store.take_stale_claims() == []
    active = await store.for_teacher(teacher)
    assert active == session(teacher, klass, **{student: "present"}) and active.claim is None


async def test_a_parked_claim_comes_back_parked_when_its_retry_is_due(store: SessionStore, short_lease: float) -> None:
    teacher, klass, student = new_id(), new_id(), new_id()
    await store.start(session(teacher, klass, **{student: "absent"}))
    claimed = await store.claim(teacher)
    await store.start(session(teacher, klass, T1))  # the teacher moved on: the claim cannot go back
    assert await store.restore(claimed) is False
    await store.park(claimed, retry_in=0.2)
    assert await store.take_stale_claims() == []
    await asyncio.sleep(0.3)
    [stale] = await store.take_stale_claims()
    assert stale == session(teacher, klass, **{student: "absent"}) and stale.parked
    assert await store.for_teacher(teacher) == session(teacher, klass, T1)  # the newer one is untouched


async def test_a_restore_repeated_after_a_lost_reply_answers_the_same(make_redis_store) -> None:
    """redis-py repeats a command after a dropped connection: the second run of RESTORE must not turn a
    success into "refused" (the teacher would be told the marks were parked)."""
    store = make_redis_store()
    teacher, klass = new_id(), new_id()
    await store.start(session(teacher, klass))
    claimed = await store.claim(teacher)
    assert await store.restore(claimed) is True
    assert await store.restore(claimed) is True  # the retry
    await store.start(session(teacher, klass, T1))
    assert await store.restore(claimed) is False  # but not once another run is active


async def test_stale_claims_go_to_one_recoverer(
    two_stores: tuple[SessionStore, SessionStore], short_lease: float
) -> None:
    a, b = two_stores
    teachers = [new_id() for _ in range(10)]
    for teacher in teachers:
        await a.start(session(teacher, new_id()))
        await a.claim(teacher)
    await asyncio.sleep(short_lease + 0.2)
    taken = await asyncio.gather(a.take_stale_claims(), b.take_stale_claims())
    names = [claimed.claim for batch in taken for claimed in batch]
    assert len(names) == len(set(names)) == 10


# --- concurrency, on both stores (two clients on Redis) ------------------------------------------------


async def test_concurrent_marks_lose_nothing(two_stores: tuple[SessionStore, SessionStore]) -> None:
    a, b = two_stores
    teacher, klass = new_id(), new_id()
    await a.start(session(teacher, klass))
    await warm_up(a, b)
    students = [new_id() for _ in range(300)]
    expected = {sid: ("present" if i % 3 else "absent") for i, sid in enumerate(students)}
    results = await asyncio.wait_for(
        asyncio.gather(
            *(
                (a if i % 2 else b).mark(session(teacher, klass), sid, status)
                for i, (sid, status) in enumerate(expected.items())
            )
        ),
        timeout=30,
    )
    assert all(result is not None for result in results)
    assert max(len(result.attendance) for result in results) == len(students)
    assert (await b.for_teacher(teacher)).attendance == expected
    assert (await a.claim(teacher)).attendance == expected


async def test_claim_is_exclusive_under_gather(two_stores: tuple[SessionStore, SessionStore]) -> None:
    a, b = two_stores
    teacher, klass, student = new_id(), new_id(), new_id()
    await a.start(session(teacher, klass, **{student: "present"}))
    await warm_up(a, b)
    claims = await asyncio.wait_for(asyncio.gather(*((a if i % 2 else b).claim(teacher) for i in range(50))), 30)
    winners = [claimed for claimed in claims if claimed is not None]
    assert winners == [session(teacher, klass, **{student: "present"})]


async def test_marks_racing_a_claim_are_either_claimed_or_refused(
    two_stores: tuple[SessionStore, SessionStore],
) -> None:
    a, b = two_stores
    teacher, klass = new_id(), new_id()
    await a.start(session(teacher, klass))
    await warm_up(a, b)
    students = [new_id() for _ in range(200)]
    marks = [b.mark(session(teacher, klass), sid, "present") for sid in students]
    results = await asyncio.wait_for(asyncio.gather(*marks[:100], a.claim(teacher), *marks[100:]), 30)
    claimed = results[100]
    mark_results = results[:100] + results[101:]
    applied = {sid for sid, result in zip(students, mark_results, strict=True) if result is not None}
    assert claimed is not None
    assert set(claimed.attendance) == applied  # nothing applied after the claim, nothing lost before it
    assert await a.for_teacher(teacher) is None
    # Late marks left nothing behind that would block putting the session back.
    assert await b.restore(claimed) is True
    assert await a.for_teacher(teacher) == claimed


# --- Redis specifics ------------------------------------------------------------------------------------


async def test_processes_share_sessions(make_redis_store: Callable[..., RedisSessionStore]) -> None:
    a, b = make_redis_store(), make_redis_store()
    teacher, klass, student = new_id(), new_id(), new_id()
    await a.start(session(teacher, klass))
    assert await b.mark(session(teacher, klass), student, "present") is not None
    assert await a.for_classes([klass]) == [session(teacher, klass, **{student: "present"})]
    assert await a.claim(teacher) is not None
    assert await b.for_teacher(teacher) is None


async def test_keys_get_the_ttl_on_start(make_redis_store: Callable[..., RedisSessionStore], raw: redis.Redis) -> None:
    store = make_redis_store(ttl_seconds=600)
    teacher, klass = new_id(), new_id()
    await store.start(session(teacher, klass))
    for key in (store.session_key(teacher), store.class_key(klass)):
        assert 595_000 < raw.pttl(key) <= 600_000, key


async def test_mark_pushes_the_expiry_back(
    make_redis_store: Callable[..., RedisSessionStore], raw: redis.Redis
) -> None:
    store = make_redis_store(ttl_seconds=600)
    teacher, klass = new_id(), new_id()
    await store.start(session(teacher, klass))
    for key in (store.session_key(teacher), store.class_key(klass)):
        raw.pexpire(key, 5_000)  # as if most of the TTL had passed
    await store.mark(session(teacher, klass), new_id(), "present")
    for key in (store.session_key(teacher), store.class_key(klass)):
        assert 595_000 < raw.pttl(key) <= 600_000, key


async def test_restore_sets_the_ttl(make_redis_store: Callable[..., RedisSessionStore], raw: redis.Redis) -> None:
    store = make_redis_store(ttl_seconds=600)
    teacher, klass = new_id(), new_id()
    await store.start(session(teacher, klass))
    claimed = await store.claim(teacher)
    assert await store.restore(claimed)
    for key in (store.session_key(teacher), store.class_key(klass)):
        assert 595_000 < raw.pttl(key) <= 600_000, key


async def test_refused_mark_does_not_extend_anything(
    make_redis_store: Callable[..., RedisSessionStore], raw: redis.Redis
) -> None:
    store = make_redis_store(ttl_seconds=600)
    teacher, klass = new_id(), new_id()
    await store.start(session(teacher, klass, T1))
    raw.pexpire(store.session_key(teacher), 5_000)
    assert await store.mark(session(teacher, klass, T0), new_id(), "present") is None
    assert raw.pttl(store.session_key(teacher)) <= 5_000


async def test_abandoned_session_expires(make_redis_store: Callable[..., RedisSessionStore], raw: redis.Redis) -> None:
    store = make_redis_store(ttl_seconds=0.4)
    teacher, klass, student = new_id(), new_id(), new_id()
    await store.start(session(teacher, klass))
    await store.mark(session(teacher, klass), student, "present")
    await asyncio.sleep(0.7)
    assert await store.for_teacher(teacher) is None
    assert await store.for_classes([klass]) == []
    assert await store.mark(session(teacher, klass), student, "present") is None
    assert await store.claim(teacher) is None
    assert raw.exists(store.session_key(teacher), store.class_key(klass)) == 0


async def test_marking_keeps_a_session_alive(make_redis_store: Callable[..., RedisSessionStore]) -> None:
    store = make_redis_store(ttl_seconds=1.0)
    teacher, klass = new_id(), new_id()
    await store.start(session(teacher, klass))
    for _ in range(6):  # 1.5 s in all, longer than the TTL
        await asyncio.sleep(0.25)
        assert await store.mark(session(teacher, klass), new_id(), "present") is not None
    assert len((await store.for_teacher(teacher)).attendance) == 6
    await asyncio.sleep(1.4)
    assert await store.for_teacher(teacher) is None


async def test_a_retried_claim_gets_the_same_session(make_redis_store: Callable[..., RedisSessionStore]) -> None:
    store = make_redis_store()
    teacher, klass, student = new_id(), new_id(), new_id()
    await store.start(session(teacher, klass, **{student: "present"}))
    first = await store._claim(teacher, "call-1")
    assert first == session(teacher, klass, **{student: "present"})
    assert await store._claim(teacher, "call-1") == first  # the same call, retried after a lost reply
    assert await store._claim(teacher, "call-2") is None  # any other claim loses
    assert await store.for_teacher(teacher) is None


async def test_the_claimed_copy_outlives_a_crash_then_expires(
    make_redis_store: Callable[..., RedisSessionStore], raw: redis.Redis
) -> None:
    """Kept as long as a session would be: a process killed mid-DONE leaves its marks recoverable."""
    store = make_redis_store(ttl_seconds=600)
    teacher, klass = new_id(), new_id()
    await store.start(session(teacher, klass))
    await store._claim(teacher, "call-1")
    assert 590_000 < raw.pttl(store.claimed_key(teacher, "call-1")) <= 600_000


async def test_large_sessions_round_trip(make_redis_store: Callable[..., RedisSessionStore]) -> None:
    store = make_redis_store()
    teacher, klass = new_id(), new_id()
    big = session(teacher, klass, **{new_id(): ("present" if i % 2 else "absent") for i in range(20_000)})
    await store.start(big)
    assert await store.for_teacher(teacher) == big
    claimed = await store.claim(teacher)
    assert claimed == big
    assert await store.restore(claimed) is True
    assert await store.for_classes([klass]) == [big]


async def test_usable_from_sync_code_on_fresh_loops(make_redis_store: Callable[..., RedisSessionStore]) -> None:
    """Sync views call the store through async_to_sync; outside a server each call runs on a new loop."""
    store = make_redis_store()
    teacher, klass = new_id(), new_id()
    students = [new_id() for _ in range(5)]

    def sync_view_work() -> None:
        async_to_sync(store.start)(session(teacher, klass))
        for sid in students:
            assert async_to_sync(store.mark)(session(teacher, klass), sid, "present") is not None

    await asyncio.wait_for(asyncio.to_thread(sync_view_work), 30)
    # Several threads at once, each on loops of its own.
    await asyncio.wait_for(asyncio.gather(*(asyncio.to_thread(sync_view_work) for _ in range(4))), 30)
    assert set((await store.for_teacher(teacher)).attendance) == set(students)
    assert len(store._connections) <= 6  # clients of closed loops are dropped, not hoarded


def test_configured_from_settings(settings) -> None:
    settings.REDIS_URL = "redis://example.invalid:6379/3"
    settings.SESSION_TTL_SECONDS = 90
    settings.REDIS_KEY_PREFIX = "school-a"
    store = import_string("live.store_redis.RedisSessionStore")()
    assert (store.url, store.prefix, store.ttl_ms) == ("redis://example.invalid:6379/3", "school-a", 90_000)
    assert store.session_key("t") == "school-a:session:t"
    del settings.REDIS_KEY_PREFIX
    assert RedisSessionStore().prefix == "live"


def test_refuses_to_run_without_a_url(settings) -> None:
    settings.REDIS_URL = ""
    with pytest.raises(ValueError):
        RedisSessionStore()
