"""live.services: the rules shared by the HTTP views and the WebSocket consumer."""

from __future__ import annotations

import asyncio
import secrets
import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import DatabaseError, IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from django.utils.dateparse import parse_datetime

from accounts.models import User
from classes.models import Enrollment
from classes.services import student_ids
from common.errors import DomainError, Forbidden, NotFound, Unavailable
from live import services
from live.models import Attendance
from live.store import Session, get_session_store
from tests.support import (
    CLASS_NOT_FOUND,
    ISO_MS_Z,
    MALFORMED_ID,
    MISSING_ID,
    NO_SESSION,
    NOT_CLASS_TEACHER,
    NOT_ENROLLED,
    NOT_YET_UPDATED,
    STUDENT_NOT_FOUND,
    make_class,
    make_user,
)

pytestmark = pytest.mark.usefixtures("fresh_live")


def store(method: str, *args):
    """Call a method of the session store from sync code."""
    return async_to_sync(getattr(get_session_store(), method))(*args)


def bulk_students(n: int) -> list[User]:
    users = [User(email=f"bulk-{secrets.token_hex(6)}@example.com", name="Bulk", role="student") for _ in range(n)]
    return User.objects.bulk_create(users)


def rows(klass) -> dict[str, str]:
    return dict(Attendance.objects.filter(klass=klass).values_list("student_id", "status"))


@contextmanager
def raises(kind: type[DomainError], message: str):
    """pytest.raises for a domain error of this kind and exact message."""
    with pytest.raises(DomainError) as info:
        yield info
    assert (type(info.value), info.value.message) == (kind, message)


# --- iso_now ------------------------------------------------------------------------------------


def test_iso_now_is_javascript_toisostring():
    before = datetime.now(tz=UTC)
    value = services.iso_now()
    after = datetime.now(tz=UTC)
    assert ISO_MS_Z.match(value), value
    parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert before - timedelta(milliseconds=1) <= parsed <= after


# --- start_session / my_persisted_status (HTTP side) -----------------------------------------------


@pytest.mark.django_db
def test_start_session_stores_an_empty_session_of_the_owning_teacher():
    teacher = make_user("teacher")
    klass = make_class(teacher)
    session = services.start_session(teacher, klass.id)
    assert (session.teacher_id, session.class_id, session.attendance) == (teacher.id, klass.id, {})
    assert ISO_MS_Z.match(session.started_at)
    assert store("for_teacher", teacher.id) == session


@pytest.mark.django_db
def test_start_session_replaces_the_teachers_session():
    teacher = make_user("teacher")
    first, second = make_class(teacher), make_class(teacher)
    old = services.start_session(teacher, first.id)
    store("mark", old, "s1", "present")
    new = services.start_session(teacher, second.id)
    assert store("for_teacher", teacher.id) == new
    assert store("for_classes", [first.id, second.id]) == [new]


@pytest.mark.django_db
@pytest.mark.parametrize("class_id", [MISSING_ID, MALFORMED_ID])
def test_start_session_of_an_unknown_class_is_not_found(class_id):
    teacher = make_user("teacher")
    with raises(NotFound, CLASS_NOT_FOUND):
        services.start_session(teacher, class_id)
    assert store("for_teacher", teacher.id) is None


@pytest.mark.django_db
def test_start_session_of_another_teachers_class_is_forbidden():
    teacher, other = make_user("teacher"), make_user("teacher")
    klass = make_class(other)
    with raises(Forbidden, NOT_CLASS_TEACHER):
        services.start_session(teacher, klass.id)
    assert store("for_teacher", teacher.id) is None
    assert store("for_teacher", other.id) is None


@pytest.mark.django_db
def test_my_persisted_status_is_the_latest_session_or_none():
    teacher, student = make_user("teacher"), make_user("student")
    klass = make_class(teacher, [student])
    assert services.my_persisted_status(klass.id, student).model_dump() == {"classId": klass.id, "status": None}
    services.persist_session(Session(teacher.id, klass.id, "2025-03-11T10:00:00.000Z", {student.id: "present"}))
    assert services.my_persisted_status(klass.id, student).model_dump() == {"classId": klass.id, "status": "present"}
    services.persist_session(Session(teacher.id, klass.id, "2025-03-12T10:00:00.000Z", {}))
    assert services.my_persisted_status(klass.id, student).model_dump() == {"classId": klass.id, "status": "absent"}
    # An older session persisted later does not win over the most recent one.
    services.persist_session(Session(teacher.id, klass.id, "2025-03-10T10:00:00.000Z", {student.id: "present"}))
    assert services.my_persisted_status(klass.id, student).model_dump() == {"classId": klass.id, "status": "absent"}


@pytest.mark.django_db
def test_my_persisted_status_errors():
    teacher, student = make_user("teacher"), make_user("student")
    klass = make_class(teacher)
    with raises(Forbidden, NOT_ENROLLED):
        services.my_persisted_status(klass.id, student)
    for class_id in (MISSING_ID, MALFORMED_ID):
        with raises(NotFound, CLASS_NOT_FOUND):
            services.my_persisted_status(class_id, student)


# --- WebSocket-side rules --------------------------------------------------------------------------


@pytest.mark.django_db
def test_check_enrolled():
    teacher, enrolled, outsider = make_user("teacher"), make_user("student"), make_user("student")
    klass = make_class(teacher, [enrolled])
    session = Session(teacher.id, klass.id, services.iso_now())
    services.check_enrolled(session, enrolled.id)
    for student_id in (outsider.id, teacher.id, MISSING_ID, MALFORMED_ID, enrolled.id.upper()):
        with raises(NotFound, STUDENT_NOT_FOUND):
            services.check_enrolled(session, student_id)


def test_my_live_status_picks_the_first_session_or_the_named_class():
    newer = Session("t2", "c2", "2025-03-11T10:00:01.000Z", {"s": "absent"})
    older = Session("t1", "c1", "2025-03-11T10:00:00.000Z", {"s": "present"})
    assert services.my_live_status([newer, older], "s", None) == "absent"
    assert services.my_live_status([newer, older], "s", "c1") == "present"
    assert services.my_live_status([newer, older], "other", "c2") == NOT_YET_UPDATED
    for sessions, class_id in (([], None), ([newer, older], "c3")):
        with raises(NotFound, NO_SESSION):
            services.my_live_status(sessions, "s", class_id)


def test_mark_attendance_on_a_session_that_ended_is_no_session():
    session = Session("t1", "c1", services.iso_now())
    with raises(NotFound, NO_SESSION):
        async_to_sync(services.mark_attendance)(session, "s1", "present")
    store("start", session)
    assert async_to_sync(services.mark_attendance)(session, "s1", "present").attendance == {"s1": "present"}


@pytest.mark.django_db
def test_connect_participants_looks_up_a_burst_in_three_queries():
    teacher, other, student = make_user("teacher"), make_user("teacher"), make_user("student")
    a, b, c = make_class(teacher, [student]), make_class(teacher), make_class(other, [student])
    gone = make_user("student")
    gone.is_active = False
    gone.save()
    loner = make_user("student")
    claims = [{"userId": u.id} for u in (teacher, student, gone, loner, student)] + [{"userId": "not-an-id"}]
    with CaptureQueriesContext(connection) as queries:
        found = services.connect_participants(claims)
    assert len(queries) == 3
    assert [None if p is None else (p[0].id, p[1]) for p in found] == [
        (teacher.id, {a.id, b.id}), (student.id, {a.id, c.id}), None, (loner.id, set()), (student.id, {a.id, c.id}),
        None,
    ]
    assert found[1][1] is not found[4][1]  # type: ignore[index]  # each socket changes its own set


# --- persist_session ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_persist_session_writes_one_record_per_enrolled_student_unmarked_absent():
    teacher = make_user("teacher")
    present, absent, unmarked, not_enrolled = (make_user("student") for _ in range(4))
    klass = make_class(teacher, [present, absent, unmarked])
    started_at = "2025-03-11T10:00:00.123Z"
    session = Session(
        teacher.id, klass.id, started_at, {present.id: "present", absent.id: "absent", not_enrolled.id: "present"}
    )
    assert services.persist_session(session) == {"present": 1, "absent": 2, "total": 3}
    assert rows(klass) == {present.id: "present", absent.id: "absent", unmarked.id: "absent"}
    assert set(Attendance.objects.filter(klass=klass).values_list("started_at", flat=True)) == {
        parse_datetime(started_at)
    }
    assert not Attendance.objects.filter(student=not_enrolled).exists()


@pytest.mark.django_db
def test_persist_session_reads_enrolment_when_it_runs():
    teacher, early, late = make_user("teacher"), make_user("student"), make_user("student")
    klass = make_class(teacher, [early])
    session = Session(teacher.id, klass.id, services.iso_now(), {early.id: "present"})
    Enrollment.objects.create(klass=klass, student=late)
    assert services.persist_session(session) == {"present": 1, "absent": 1, "total": 2}
    assert rows(klass) == {early.id: "present", late.id: "absent"}


@pytest.mark.django_db
def test_persist_session_of_an_empty_class():
    teacher = make_user("teacher")
    klass = make_class(teacher)
    assert services.persist_session(Session(teacher.id, klass.id, services.iso_now())) == {
        "present": 0,
        "absent": 0,
        "total": 0,
    }
    assert rows(klass) == {}


@pytest.mark.django_db(transaction=True)
def test_persist_session_is_all_or_nothing():
    teacher = make_user("teacher")
    students = [make_user("student") for _ in range(3)]
    klass = make_class(teacher, students)
    session = Session(teacher.id, klass.id, services.iso_now())
    # The same session already persisted for one student: the whole write must fail, not just that row.
    Attendance.objects.create(
        klass=klass, student=students[1], status="present", started_at=parse_datetime(session.started_at)
    )
    with pytest.raises(IntegrityError):
        services.persist_session(session)
    assert rows(klass) == {students[1].id: "present"}


@pytest.mark.django_db
def test_persist_session_query_count_does_not_grow_with_the_class():
    teacher = make_user("teacher")
    small, large = make_class(teacher, bulk_students(5)), make_class(teacher, bulk_students(200))
    sql: dict[str, list[str]] = {}
    for klass in (small, large):
        with CaptureQueriesContext(connection) as queries:
            services.persist_session(Session(teacher.id, klass.id, services.iso_now()))
        sql[klass.id] = [query["sql"][:60] for query in queries.captured_queries]
    # One INSERT for the whole class on every backend (SQLite included: attendance_site.sqlite3).
    assert len(sql[large.id]) == len(sql[small.id]), sql
    assert Attendance.objects.filter(klass=large).count() == 200


# --- finish_session (DONE) -------------------------------------------------------------------------


@pytest.fixture
def live_class(transactional_db):
    teacher = make_user("teacher")
    students = [make_user("student") for _ in range(3)]
    return teacher, make_class(teacher, students), students


@pytest.fixture
async def started(live_class):
    """live_class with its session started and the first student marked present."""
    teacher, klass, students = live_class
    session = Session(teacher.id, klass.id, services.iso_now(), {students[0].id: "present"})
    await get_session_store().start(session)
    return teacher, klass, session


@pytest.mark.django_db(transaction=True)
async def test_finish_session_persists_and_ends_the_session(started):
    teacher, klass, session = started
    ended, result = await services.finish_session(teacher.id)
    assert ended == session
    assert result == {"present": 1, "absent": 2, "total": 3}
    assert await get_session_store().for_teacher(teacher.id) is None
    with raises(NotFound, NO_SESSION):
        await services.finish_session(teacher.id)
    assert await Attendance.objects.filter(klass=klass).acount() == 3


@pytest.mark.django_db(transaction=True)
async def test_finish_session_keeps_the_session_when_persisting_fails(started, monkeypatch):
    teacher, klass, session = started

    def fail(*args, **kwargs):
        raise DatabaseError("disk on fire")

    monkeypatch.setattr(Attendance.objects, "bulk_create", fail)
    with pytest.raises(Unavailable) as info:
        await services.finish_session(teacher.id)
    assert info.value.message
    assert await get_session_store().for_teacher(teacher.id) == session
    assert await Attendance.objects.filter(klass=klass).acount() == 0

    monkeypatch.undo()
    assert (await services.finish_session(teacher.id))[1] == {"present": 1, "absent": 2, "total": 3}
    assert await Attendance.objects.filter(klass=klass).acount() == 3


@pytest.mark.django_db(transaction=True)
async def test_finish_session_keeps_the_session_whatever_fails(started, monkeypatch):
    teacher, klass, session = started

    def bug(*args, **kwargs):
        raise RuntimeError("not a database error")

    monkeypatch.setattr(services, "persist_session", bug)
    with pytest.raises(RuntimeError):
        await services.finish_session(teacher.id)
    assert await get_session_store().for_teacher(teacher.id) == session


@pytest.mark.django_db(transaction=True)
async def test_finish_session_restores_after_a_cancelled_caller_when_the_write_fails(started, monkeypatch):
    """A socket that closes while DONE is writing: if the write then fails, the marks must still be put
    back (the write runs on in its thread whatever happens to the caller)."""
    teacher, _, session = started
    writing, release = threading.Event(), threading.Event()

    def slow_failing_persist(*args, **kwargs):
        writing.set()
        release.wait(10)
        raise DatabaseError("disk on fire")

    monkeypatch.setattr(services, "persist_session", slow_failing_persist)
    done = asyncio.create_task(services.finish_session(teacher.id))
    await asyncio.get_running_loop().run_in_executor(None, writing.wait, 10)
    done.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await done
    for _ in range(100):  # the shielded write and its restore go on after the cancellation
        if await get_session_store().for_teacher(teacher.id) is not None:
            break
        await asyncio.sleep(0.05)
    assert await get_session_store().for_teacher(teacher.id) == session


@pytest.mark.django_db(transaction=True)
async def test_finish_session_failure_does_not_undo_a_newer_session(live_class, monkeypatch):
    teacher, klass, _ = live_class
    old = Session(teacher.id, klass.id, "2025-03-11T10:00:00.000Z")
    new = Session(teacher.id, klass.id, "2025-03-11T10:05:00.000Z")
    await get_session_store().start(old)

    def start_new_then_fail(*args, **kwargs):
        async_to_sync(get_session_store().start)(new)  # the teacher restarts while DONE is persisting
        raise DatabaseError("disk on fire")

    monkeypatch.setattr(Attendance.objects, "bulk_create", start_new_then_fail)
    with pytest.raises(Unavailable):
        await services.finish_session(teacher.id)
    assert await get_session_store().for_teacher(teacher.id) == new


# --- DONE converges (docs/production.md "What survives what") -------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_failed_done_that_cannot_be_put_back_says_so_and_is_persisted_by_recovery(
    live_class, monkeypatch, settings
):
    teacher, klass, students = live_class
    old = Session(teacher.id, klass.id, "2025-03-11T10:00:00.000Z", {students[0].id: "present"})
    new = Session(teacher.id, klass.id, "2025-03-11T10:05:00.000Z")
    await get_session_store().start(old)
    real_bulk_create = Attendance.objects.bulk_create

    def start_new_then_fail(*args, **kwargs):
        async_to_sync(get_session_store().start)(new)
        raise DatabaseError("disk on fire")

    monkeypatch.setattr(Attendance.objects, "bulk_create", start_new_then_fail)
    monkeypatch.setattr(services, "PARKED_RETRY_SECONDS", 0.2)
    with pytest.raises(Unavailable) as info:
        await services.finish_session(teacher.id)
    assert info.value.message == "Could not persist attendance; the marks are kept for recovery"
    assert await get_session_store().for_teacher(teacher.id) == new  # the newer session is untouched

    monkeypatch.setattr(Attendance.objects, "bulk_create", real_bulk_create)
    assert await services.recover_claims() == 0  # its retry is not due yet
    await asyncio.sleep(0.3)
    assert await services.recover_claims() == 1
    assert await rows_of(klass) == {students[0].id: "present", students[1].id: "absent", students[2].id: "absent"}
    assert await get_session_store().take_stale_claims() == []
    assert await get_session_store().for_teacher(teacher.id) == new


async def rows_of(klass) -> dict[str, str]:
    return await database_sync_to_async(rows)(klass)


@pytest.mark.django_db(transaction=True)
async def test_done_retried_after_a_lost_reply_ends_the_session_with_the_persisted_summary(started, monkeypatch):
    """The records were committed, but the reply was lost (the connection broke right after COMMIT): the
    session was put back; the retry must not fail forever, nor write twice, but end it truthfully."""
    teacher, klass, session = started
    real_persist = services.persist_session

    def commit_then_lose_the_reply(session):
        real_persist(session)
        raise DatabaseError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "persist_session", commit_then_lose_the_reply)
    with pytest.raises(Unavailable):
        await services.finish_session(teacher.id)
    assert await get_session_store().for_teacher(teacher.id) == session  # "please try again" is true
    monkeypatch.setattr(services, "persist_session", real_persist)

    # Meanwhile the teacher marked someone else; the persisted records are the truth.
    unmarked = next(sid for sid in await database_sync_to_async(student_ids)(klass.id) if sid not in session.attendance)
    await get_session_store().mark(session, unmarked, "present")
    ended, result = await services.finish_session(teacher.id)
    assert ended.same_run(session)
    assert result == {"present": 1, "absent": 2, "total": 3}
    assert await Attendance.objects.filter(klass=klass).acount() == 3
    assert await get_session_store().for_teacher(teacher.id) is None


@pytest.mark.django_db(transaction=True)
def test_persist_session_twice_writes_once_and_answers_the_same():
    teacher, student = make_user("teacher"), make_user("student")
    klass = make_class(teacher, [student])
    session = Session(teacher.id, klass.id, services.iso_now(), {student.id: "present"})
    first = services.persist_session(session)
    again = services.persist_session(Session(teacher.id, klass.id, session.started_at, {student.id: "absent"}))
    assert first == again == {"present": 1, "absent": 0, "total": 1}
    assert rows(klass) == {student.id: "present"}


@pytest.mark.django_db(transaction=True)
async def test_recovery_settles_claims_left_by_a_dead_worker(live_class, settings):
    """A worker that claimed a session for DONE and died: before committing → the session is active again;
    after committing → the claim is released (the session ended)."""
    settings.LIVE_CLAIM_LEASE_SECONDS = 0.2
    teacher, klass, students = live_class
    store = get_session_store()
    unpersisted = Session(teacher.id, klass.id, "2025-03-11T10:00:00.000Z", {students[0].id: "present"})
    await store.start(unpersisted)
    await store.claim(teacher.id)  # ... and the process died here
    other_teacher = await database_sync_to_async(make_user)("teacher")
    other_class = await database_sync_to_async(make_class)(other_teacher, students)
    persisted = Session(other_teacher.id, other_class.id, "2025-03-11T11:00:00.000Z")
    await store.start(persisted)
    claimed = await store.claim(other_teacher.id)
    await database_sync_to_async(services.persist_session)(claimed)  # ... and died here, before releasing

    assert await services.recover_claims() == 0  # still leased
    await asyncio.sleep(0.3)
    assert await services.recover_claims() == 2
    assert await store.for_teacher(teacher.id) == unpersisted
    assert await store.for_teacher(other_teacher.id) is None
    assert await store.take_stale_claims() == []
    assert (await services.finish_session(teacher.id))[1] == {"present": 1, "absent": 2, "total": 3}


def test_default_recovery_is_within_the_promised_minute(settings):
    """Lease + one upkeep period (with its 20 % jitter) ≤ 60 s (docs/production.md "What survives what")."""
    assert settings.LIVE_CLAIM_LEASE_SECONDS + 1.2 * settings.LIVE_UPKEEP_SECONDS <= 60
