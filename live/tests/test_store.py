"""InMemorySessionStore: the spec's activeSession, one per teacher, each operation atomic."""

from __future__ import annotations

import asyncio

import pytest

from live.store import InMemorySessionStore, Session, SessionStore, get_session_store


def session(teacher: str = "t1", klass: str = "c1", at: str = "2025-03-11T10:00:00.000Z", **marks: str) -> Session:
    return Session(teacher_id=teacher, class_id=klass, started_at=at, attendance=dict(marks))


@pytest.fixture
def store() -> InMemorySessionStore:
    return InMemorySessionStore()


async def test_empty_store_has_no_sessions(store):
    assert await store.for_teacher("t1") is None
    assert await store.for_classes(["c1"]) == []
    assert await store.claim("t1") is None


async def test_start_makes_the_session_active_for_its_teacher_and_class(store):
    s = session()
    await store.start(s)
    assert await store.for_teacher("t1") == s
    assert await store.for_classes(["c1"]) == [s]
    assert await store.for_teacher("t2") is None


async def test_start_replaces_the_teachers_session_with_empty_marks(store):
    first = session(klass="c1")
    await store.start(first)
    await store.mark(first, "s1", "present")
    second = session(klass="c2", at="2025-03-11T10:05:00.000Z")
    await store.start(second)
    assert await store.for_teacher("t1") == second
    assert (await store.for_teacher("t1")).attendance == {}
    # The replaced class no longer has a live session.
    assert await store.for_classes(["c1"]) == []
    assert await store.for_classes(["c1", "c2"]) == [second]


async def test_restarting_the_same_class_replaces_its_marks(store):
    first = session()
    await store.start(first)
    await store.mark(first, "s1", "present")
    again = session(at="2025-03-11T11:00:00.000Z")
    await store.start(again)
    assert await store.for_classes(["c1"]) == [again]
    assert again.counts() == {"present": 0, "absent": 0, "total": 0}


async def test_teachers_have_independent_sessions(store):
    a, b = session("ta", "ca"), session("tb", "cb", at="2025-03-11T10:00:01.000Z")
    await store.start(a)
    await store.start(b)
    assert await store.claim("ta") == a
    assert await store.for_teacher("tb") == b
    assert await store.for_classes(["ca", "cb"]) == [b]


async def test_for_classes_lists_most_recently_started_first(store):
    sessions = [
        session("t1", "c1", "2025-03-11T10:00:00.000Z"),
        session("t2", "c2", "2025-03-11T10:00:02.000Z"),
        session("t3", "c3", "2025-03-11T10:00:01.000Z"),
    ]
    for s in sessions:
        await store.start(s)
    found = await store.for_classes(["c1", "c2", "c3", "unknown"])
    assert [s.class_id for s in found] == ["c2", "c3", "c1"]
    # Whatever order the classes are asked in.
    assert [s.class_id for s in await store.for_classes(("c1", "c3"))] == ["c3", "c1"]
    assert [s.class_id for s in await store.for_classes({"c3", "c1", "c2"})] == ["c2", "c3", "c1"]


async def test_for_classes_sees_the_latest_marks(store):
    s = session()
    await store.start(s)
    await store.mark(s, "s1", "absent")
    [live] = await store.for_classes(["c1"])
    assert live.attendance == {"s1": "absent"}


async def test_mark_records_and_overwrites_without_changing_older_snapshots(store):
    s = session()
    await store.start(s)
    one = await store.mark(s, "s1", "present")
    two = await store.mark(one, "s1", "absent")
    three = await store.mark(s, "s2", "present")  # a stale snapshot of the same run still marks
    assert one.attendance == {"s1": "present"}
    assert two.attendance == {"s1": "absent"}
    assert three.attendance == {"s1": "absent", "s2": "present"}
    assert s.attendance == {}
    assert await store.for_teacher("t1") == three
    assert three.counts() == {"present": 1, "absent": 1, "total": 2}


async def test_mark_on_a_replaced_session_returns_none_and_changes_nothing(store):
    old = session()
    await store.start(old)
    new = session(at="2025-03-11T10:30:00.000Z")
    await store.start(new)
    assert await store.mark(old, "s1", "present") is None
    assert (await store.for_teacher("t1")).attendance == {}


async def test_mark_on_an_ended_session_returns_none(store):
    s = session()
    await store.start(s)
    await store.claim("t1")
    assert await store.mark(s, "s1", "present") is None
    assert await store.for_teacher("t1") is None


async def test_claim_takes_the_session_out(store):
    s = session()
    await store.start(s)
    marked = await store.mark(s, "s1", "present")
    assert await store.claim("t1") == marked
    assert await store.for_teacher("t1") is None
    assert await store.for_classes(["c1"]) == []
    assert await store.claim("t1") is None


async def test_claim_is_exclusive_under_concurrent_claims(store):
    s = session()
    await store.start(s)
    results = await asyncio.gather(*(store.claim("t1") for _ in range(50)))
    assert [r for r in results if r is not None] == [s]


async def test_claim_is_exclusive_across_threads(store):
    s = session()
    await store.start(s)

    def claim() -> Session | None:
        return asyncio.run(store.claim("t1"))

    results = await asyncio.gather(*(asyncio.to_thread(claim) for _ in range(20)))
    assert [r for r in results if r is not None] == [s]


async def test_restore_puts_a_claimed_session_back(store):
    s = session()
    await store.start(s)
    claimed = await store.mark(s, "s1", "present")
    assert await store.claim("t1") == claimed
    assert await store.restore(claimed) is True
    assert await store.for_teacher("t1") == claimed
    assert await store.for_classes(["c1"]) == [claimed]
    # Restored means active again: it can be marked and claimed as before.
    assert (await store.mark(claimed, "s2", "absent")).attendance == {"s1": "present", "s2": "absent"}


async def test_restore_refuses_when_a_new_session_has_started(store):
    old = session(klass="c1")
    await store.start(old)
    await store.claim("t1")
    new = session(klass="c2", at="2025-03-11T10:30:00.000Z")
    await store.start(new)
    assert await store.restore(old) is False
    assert await store.for_teacher("t1") == new
    assert await store.for_classes(["c1", "c2"]) == [new]


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
