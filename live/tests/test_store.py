"""What is particular to InMemorySessionStore and to Session itself. The store's contract — the same on
both stores — is tested once, on both, in test_store_redis.py."""

from __future__ import annotations

import asyncio

import pytest

from live.store import InMemorySessionStore, Session, SessionStore, get_session_store


def session(teacher: str = "t1", klass: str = "c1", at: str = "2025-03-11T10:00:00.000Z", **marks: str) -> Session:
    return Session(teacher_id=teacher, class_id=klass, started_at=at, attendance=dict(marks))


@pytest.fixture
def store() -> InMemorySessionStore:
    return InMemorySessionStore()


async def test_claim_is_exclusive_across_threads(store):
    s = session()
    await store.start(s)

    def claim() -> Session | None:
        return asyncio.run(store.claim("t1"))

    results = await asyncio.gather(*(asyncio.to_thread(claim) for _ in range(20)))
    assert [r for r in results if r is not None] == [s]


def test_session_same_run_and_counts():
    s = session(s1="present", s2="absent", s3="present")
    assert s.counts() == {"present": 2, "absent": 1, "total": 3}
    assert s.same_run(session(s9="absent"))
    assert not s.same_run(session(at="2025-03-11T10:00:00.001Z"))
    assert not s.same_run(session(klass="c2"))
    assert not s.same_run(None)


def test_get_session_store_is_a_process_wide_singleton(fresh_live):
    store = get_session_store()
    assert isinstance(store, SessionStore)
    assert isinstance(store, InMemorySessionStore)
    assert get_session_store() is store
