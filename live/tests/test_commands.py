"""live.commands and live.selectors: the live session as a database record (start, mark, DONE, recovery,
expiry), and the rule of which records count. The same tests run on every backend of the CI."""

from __future__ import annotations

import secrets
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from classes.models import Enrollment
from common.errors import DomainError, Forbidden, NotFound, Unavailable
from common.prepared import MAX_LIST
from live import commands, history, selectors
from live.models import Attendance, AttendanceSession, SessionState
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
    threads_can_race,
)


def bulk_students(n: int) -> list[User]:
    users = [User(email=f"bulk-{secrets.token_hex(6)}@example.com", name="Bulk", role="student") for _ in range(n)]
    return User.objects.bulk_create(users)


def rows(klass) -> dict[str, str]:
    return dict(Attendance.objects.filter(klass=klass).values_list("student_id", "status"))


def counts(present: int, absent: int, total: int, late: int = 0, excused: int = 0) -> dict[str, int]:
    return {"present": present, "absent": absent, "late": late, "excused": excused, "total": total}


def state(session) -> str:
    return AttendanceSession.objects.get(pk=session.id).state


@contextmanager
def raises(kind: type[DomainError], message: str):
    """pytest.raises for a domain error of this kind and exact message."""
    with pytest.raises(DomainError) as info:
        yield info
    assert (type(info.value), info.value.message) == (kind, message)


@pytest.fixture
def room(db):
    teacher = make_user("teacher")
    students = [make_user("student") for _ in range(3)]
    return teacher, make_class(teacher, students), students


def started(room, marks: dict[int, str] | None = None):
    teacher, klass, students = room
    session = commands.start_session(teacher, klass.id)
    for index, status in (marks or {0: "present"}).items():
        commands.mark_attendance(session, students[index].id, status, teacher.id)
    return selectors.active_session(teacher.id)


# --- start and mark ----------------------------------------------------------------------------------------


def test_iso_now_is_javascript_toisostring():
    assert ISO_MS_Z.fullmatch(commands.iso_now())


def test_start_writes_a_live_record_of_the_owning_teacher(room):
    teacher, klass, _ = room
    session = commands.start_session(teacher, klass.id)
    row = AttendanceSession.objects.get(pk=session.id)
    assert (row.state, row.teacher_id, row.klass_id, row.marks) == (SessionState.LIVE, teacher.id, klass.id, {})
    assert ISO_MS_Z.fullmatch(session.started_at)
    assert selectors.live_session(teacher).model_dump() == {
        "sessionId": session.id, "classId": klass.id, "startedAt": session.started_at, "attendance": {}, "marks": {},
        "checkIn": None,
    }


def test_start_replaces_the_teachers_live_session(room):
    teacher, klass, students = room
    first = started(room)
    second = commands.start_session(teacher, klass.id)
    assert state(first) == SessionState.REPLACED and state(second) == SessionState.LIVE
    assert selectors.active_session(teacher.id) == second and second.attendance == {}
    with raises(NotFound, NO_SESSION):
        commands.mark_attendance(first, students[1].id, "present", teacher.id)


@pytest.mark.parametrize("class_id", [MISSING_ID, MALFORMED_ID])
def test_start_of_an_unknown_class_is_not_found(room, class_id):
    with raises(NotFound, CLASS_NOT_FOUND):
        commands.start_session(room[0], class_id)


def test_start_of_another_teachers_class_is_forbidden(room):
    with raises(Forbidden, NOT_CLASS_TEACHER):
        commands.start_session(make_user("teacher"), room[1].id)
    assert not AttendanceSession.objects.exists()


def test_a_mark_is_written_with_when_and_by_whom(room):
    teacher, _, students = room
    before = commands.iso_now()
    session = started(room, {0: "present", 1: "absent"})
    commands.mark_attendance(session, students[1].id, "present", teacher.id)  # marking again overwrites
    marks = AttendanceSession.objects.get(pk=session.id).marks
    assert set(marks) == {students[0].id, students[1].id}
    mark = marks[students[1].id]
    assert (mark["status"], mark["by"], mark["source"]) == ("present", teacher.id, "teacher")
    assert ISO_MS_Z.fullmatch(mark["at"]) and mark["at"] >= before


def test_check_enrolled_and_marking_an_outsider(room):
    teacher, _, _ = room
    session = started(room)
    for student_id in (make_user("student").id, MISSING_ID, MALFORMED_ID):
        with raises(NotFound, STUDENT_NOT_FOUND):
            commands.mark_attendance(session, student_id, "present", teacher.id)


def test_my_live_status_picks_the_first_session_or_the_named_class(room):
    teacher, klass, students = room
    session = started(room)
    sessions = selectors.student_sessions([klass.id])
    assert sessions == [session]
    assert selectors.my_live_status(sessions, students[0].id, None) == "present"
    assert selectors.my_live_status(sessions, students[1].id, klass.id) == NOT_YET_UPDATED
    with raises(NotFound, NO_SESSION):
        selectors.my_live_status(sessions, students[0].id, MISSING_ID)


@pytest.mark.parametrize("crowd", [0, MAX_LIST])  # compiled once (common/prepared.py); past MAX_LIST, the ORM's
def test_connect_participants_looks_up_a_burst_in_three_queries(db, crowd):
    teacher, other, student = make_user("teacher"), make_user("teacher"), make_user("student")
    a, b, c = make_class(teacher, [student]), make_class(teacher), make_class(other, [student])
    gone = make_user("student")
    gone.is_active = False
    gone.save()
    loner = make_user("student")
    others = bulk_students(crowd)
    claims = [{"userId": u.id} for u in (teacher, student, gone, loner, student, *others)] + [{"userId": "not-an-id"}]
    for _ in range(2):  # the second time from what was compiled the first
        with CaptureQueriesContext(connection) as queries:
            found = selectors.connect_participants(claims)
        assert len(queries) == 3
        assert [None if p is None else (p[0].id, p[1]) for p in found] == [
            (teacher.id, {a.id, b.id}), (student.id, {a.id, c.id}), None, (loner.id, set()),
            (student.id, {a.id, c.id}), *[(u.id, set()) for u in others], None,
        ]
        assert found[1][1] is not found[4][1]  # type: ignore[index]  # each socket changes its own set
    if not crowd and connection.vendor != "mongodb":  # (whose compiler makes no SQL: the ORM's each time)
        from accounts.auth import _active_among

        for prepared in (_active_among._rows, selectors._classes_taught_by, selectors._enrolments_of):
            assert prepared._compiled and None not in prepared._compiled.values()  # compiled, not the ORM's


# --- DONE ----------------------------------------------------------------------------------------------------


def test_done_writes_one_record_per_enrolled_student_unmarked_absent(room):
    teacher, klass, students = room
    outsider = make_user("student")
    session = started(room, {0: "present", 1: "absent"})
    # Enrolment is read when DONE runs: a student enrolled since is absent; one removed since is left out.
    late = make_user("student")
    Enrollment.objects.create(klass=klass, student=late)
    Enrollment.objects.filter(klass=klass, student=students[2]).delete()
    assert commands.finish_session(session) == counts(1, 2, 3)
    assert rows(klass) == {students[0].id: "present", students[1].id: "absent", late.id: "absent"}
    assert set(Attendance.objects.filter(klass=klass).values_list("session_id", flat=True)) == {session.id}
    row = AttendanceSession.objects.get(pk=session.id)
    assert row.state == SessionState.PERSISTED and row.ended_at is not None
    assert not Attendance.objects.filter(student=outsider).exists()
    assert selectors.live_session(teacher) is None


def test_done_of_an_empty_class(db):
    teacher = make_user("teacher")
    klass = make_class(teacher)
    session = commands.start_session(teacher, klass.id)
    assert commands.finish_session(session) == counts(0, 0, 0)


def test_a_second_done_and_a_late_mark_find_no_session(room):
    teacher, klass, students = room
    session = started(room)
    commands.finish_session(session)
    with raises(NotFound, NO_SESSION):
        commands.finish_session(session)
    with raises(NotFound, NO_SESSION):
        commands.mark_attendance(session, students[1].id, "present", teacher.id)
    assert len(rows(klass)) == 3


def test_done_query_count_does_not_grow_with_the_class(db):
    teacher = make_user("teacher")
    sql: dict[int, list[str]] = {}
    for n in (5, 200):
        klass = make_class(teacher, bulk_students(n))
        session = commands.start_session(teacher, klass.id)
        with CaptureQueriesContext(connection) as queries:
            commands.finish_session(session)
        sql[n] = [query["sql"][:60] for query in queries.captured_queries]
    assert len(sql[200]) == len(sql[5]), sql


def done_whose_records_fail_to_write(session, monkeypatch) -> None:
    """DONE with the records' bulk write failing (a full disk): the teacher is told to try again."""

    def fail(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(Attendance.objects, "bulk_create", fail)
    with raises(Unavailable, "Could not persist attendance, please try again"):
        commands.finish_session(session)


@pytest.mark.django_db(transaction=True)
def test_a_failed_done_leaves_the_session_live_with_its_marks(room, monkeypatch):
    teacher, klass, students = room
    session = started(room)
    done_whose_records_fail_to_write(session, monkeypatch)
    assert rows(klass) == {}
    assert selectors.active_session(teacher.id) == session
    monkeypatch.undo()
    assert commands.finish_session(session) == counts(1, 2, 3)


@pytest.mark.django_db(transaction=True)
def test_done_whose_commit_reply_was_lost_tells_the_truth(room, monkeypatch):
    """The records were committed, but the reply was lost (the connection broke right after COMMIT): DONE reads
    the session again and answers the persisted summary; nothing is written twice."""
    teacher, klass, _ = room
    session = started(room)
    if commands.transaction_if_supported() is None:
        real_commit = commands._commit_claim

        def commit_then_lose(session_id, token):
            real_commit(session_id, token)
            raise DatabaseError("connection closed")

        monkeypatch.setattr(commands, "_commit_claim", commit_then_lose)
    else:
        real_atomic = commands.transaction_if_supported

        @contextmanager
        def commit_then_lose():
            with real_atomic():
                yield
            raise DatabaseError("server closed the connection unexpectedly")

        monkeypatch.setattr(commands, "transaction_if_supported", commit_then_lose)
    assert commands.finish_session(session) == counts(1, 2, 3)
    monkeypatch.undo()
    assert len(rows(klass)) == 3 and state(session) == SessionState.PERSISTED
    with raises(NotFound, NO_SESSION):
        commands.finish_session(session)


@pytest.mark.django_db(transaction=True)
def test_done_whose_commit_reply_was_lost_still_announces_the_check_in_window_closed(room, monkeypatch):
    """The window is closed in the DONE's transaction; a commit that fails after it went through drops that
    transaction's after-commit broadcasts, and the upkeep cannot find the (cleared) window: DONE announces it."""
    if connection.vendor == "mongodb":
        pytest.skip("the lost reply is simulated at Django's SQL commit (MongoDB's: the test above)")
    teacher, klass, _ = room
    commands.open_checkin(started(room), 10, 30, None)
    session = selectors.active_session(teacher.id, False)
    assert session.window is not None
    sent: list[str] = []
    def record(class_id, event, *args):
        transaction.on_commit(lambda: sent.append(event))

    monkeypatch.setattr(commands, "broadcast_on_commit", record)
    real_commit = connection._commit

    def commit_then_lose():
        real_commit()
        raise DatabaseError("server closed the connection unexpectedly")

    monkeypatch.setattr(connection, "_commit", commit_then_lose)
    assert commands.finish_session(session) == counts(1, 2, 3)
    monkeypatch.undo()
    assert sent == ["CHECKIN_CLOSED", "DONE"]
    assert state(session) == SessionState.PERSISTED and selectors.teacher_window(teacher.id) is None


# --- without transactions (standalone MongoDB; forced here on every backend) -------------------------------


@pytest.fixture
def no_transactions(monkeypatch):
    monkeypatch.setattr(commands, "transaction_if_supported", lambda: None)


@pytest.mark.django_db(transaction=True)
def test_without_transactions_done_claims_writes_and_commits(room, no_transactions):
    teacher, klass, students = room
    session = started(room)
    assert commands.finish_session(session) == counts(1, 2, 3)
    row = AttendanceSession.objects.get(pk=session.id)
    assert row.state == SessionState.PERSISTED and row.claim and row.claim_until is None  # the token names the DONE
    with raises(NotFound, NO_SESSION):
        commands.finish_session(session)


@pytest.mark.django_db(transaction=True)
def test_on_memory_sqlite_a_dones_notices_are_sent_before_it_returns(room):
    """tests/support.py: at_risk_notices_inline_on_memory_sqlite. Without it, the mail thread's reads race the
    test's next write on the in-memory database ("database table is locked")."""
    if threads_can_race():
        pytest.skip("threads do not collide on this database: the notices keep their thread")
    session = started(room)
    commands.finish_session(session)
    assert len(mail.outbox) == 2  # the two absent students, each at 0% after their first session
    assert all(message.subject.startswith("Attendance notice") for message in mail.outbox)


@pytest.mark.django_db(transaction=True)
def test_without_transactions_a_late_commit_after_recovery_is_fenced_off(room, no_transactions, monkeypatch):
    """Issue 22.1: a DONE that stalls past its lease. Recovery gives the session back to live; marks go on; the
    stalled DONE's commit then matches nothing: it fails, and its records are removed."""
    teacher, klass, students = room
    session = started(room)
    real_commit = commands._commit_claim

    def stall_past_the_lease(session_id, token):
        assert state(session) == SessionState.PERSISTING
        with raises(NotFound, NO_SESSION):  # a mark while claimed is applied nowhere
            commands.mark_attendance(session, students[1].id, "present", teacher.id)
        AttendanceSession.objects.filter(pk=session_id).update(claim_until=datetime.now(tz=UTC) - timedelta(seconds=1))
        assert commands.recover_claims() == 1
        assert not Attendance.objects.filter(session_id=session_id).exists()  # its partial records removed
        commands.mark_attendance(session, students[2].id, "present", teacher.id)  # acknowledged: it must count
        Attendance.objects.bulk_create(  # what the stalled writer inserted after recovery's clean-up
            [Attendance(session_id=session_id, klass_id=klass.id, student_id=students[0].id, status="absent",
                        started_at=AttendanceSession.objects.get(pk=session_id).started_at)]
        )
        return real_commit(session_id, token)

    monkeypatch.setattr(commands, "_commit_claim", stall_past_the_lease)
    with raises(Unavailable, "Could not persist attendance, please try again"):
        commands.finish_session(session)
    monkeypatch.setattr(commands, "_commit_claim", real_commit)
    assert state(session) == SessionState.LIVE
    assert selectors.active_session(teacher.id).attendance == {students[0].id: "present", students[2].id: "present"}
    assert commands.finish_session(session) == counts(2, 1, 3)
    assert rows(klass) == {students[0].id: "present", students[1].id: "absent", students[2].id: "present"}


@pytest.mark.django_db(transaction=True)
def test_without_transactions_a_failed_write_gives_the_session_back(room, no_transactions, monkeypatch):
    teacher, klass, _ = room
    session = started(room)
    done_whose_records_fail_to_write(session, monkeypatch)
    monkeypatch.undo()
    assert state(session) == SessionState.LIVE and rows(klass) == {}


def test_recovery_leaves_claims_within_their_lease(room):
    session = started(room)
    AttendanceSession.objects.filter(pk=session.id).update(
        state=SessionState.PERSISTING, claim="abc", claim_until=datetime.now(tz=UTC) + timedelta(seconds=30)
    )
    assert commands.recover_claims() == 0 and state(session) == SessionState.PERSISTING


def test_default_recovery_is_within_the_promised_minute(settings):
    """Lease + one upkeep period (with its 20 % jitter) ≤ 60 s (docs/production.md "What survives what")."""
    assert settings.LIVE_CLAIM_LEASE_SECONDS + 1.2 * settings.LIVE_UPKEEP_SECONDS <= 60


# --- expiry, and which records count -----------------------------------------------------------------------


def test_a_session_idle_past_its_ttl_is_not_live_anywhere_and_expires(room, settings, client):
    from tests.support import auth

    teacher, klass, students = room
    session = started(room)
    settings.SESSION_TTL_SECONDS = 60
    AttendanceSession.objects.filter(pk=session.id).update(updated_at=datetime.now(tz=UTC) - timedelta(seconds=59))
    assert selectors.teacher_session(teacher.id) == session and selectors.student_sessions([klass.id]) == [session]
    assert selectors.teacher_session(teacher.id, marks=False).id == session.id  # type: ignore[union-attr]
    AttendanceSession.objects.filter(pk=session.id).update(updated_at=datetime.now(tz=UTC) - timedelta(seconds=61))
    assert selectors.teacher_session(teacher.id) is None and selectors.student_sessions([klass.id]) == []
    assert selectors.teacher_session(teacher.id, marks=False) is None
    assert client.get("/attendance/active", headers=auth(teacher)).json()["data"] is None
    with raises(NotFound, NO_SESSION):
        commands.mark_attendance(session, students[1].id, "present", teacher.id)
    with raises(NotFound, NO_SESSION):
        commands.finish_session(session)
    assert commands.expire_sessions() == 1 and state(session) == SessionState.EXPIRED
    assert commands.expire_sessions() == 0


def test_only_persisted_sessions_count_anywhere(room, client):
    """Records of a session that is not persisted (left by a write without a transaction, say) never show:
    not in the history, the report, the CSV, my-history or my-attendance."""
    from tests.support import auth

    teacher, klass, students = room
    persisted = started(room)
    commands.finish_session(persisted)
    for final_state in (SessionState.REPLACED, SessionState.EXPIRED, SessionState.PERSISTING, SessionState.LIVE):
        other = commands.start_session(teacher, klass.id)
        row = AttendanceSession.objects.get(pk=other.id)
        Attendance.objects.bulk_create(
            [Attendance(session=row, klass=klass, student=s, status="absent", started_at=row.started_at)
             for s in students]
        )
        AttendanceSession.objects.filter(pk=other.id).update(state=final_state)
    assert [s.id for s in history.sessions_page(klass, 100)] == [persisted.id]
    report = history.class_report(klass)
    assert report.sessions == 1 and report.students[0].present + report.students[0].absent == 1
    assert history.report_csv(klass).splitlines()[0].count("Z") == 1
    assert [e.status for e in history.my_history(klass, students[0])] == ["present"]
    assert selectors.my_persisted_status(klass.id, students[0]).status == "present"
    answer = client.get(f"/class/{klass.id}/my-attendance", headers=auth(students[0])).json()
    assert answer["data"]["status"] == "present"
    with raises(NotFound, "Session not found"):
        history.session_detail(klass, other.id)


def test_my_persisted_status_errors(room):
    _, klass, _ = room
    with raises(NotFound, CLASS_NOT_FOUND):
        selectors.my_persisted_status(MISSING_ID, make_user("student"))
    with raises(Forbidden, NOT_ENROLLED):
        selectors.my_persisted_status(klass.id, make_user("student"))


# --- the migration of existing rows -------------------------------------------------------------------------


T0 = datetime(2025, 3, 11, 10, 0, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_migration_links_records_to_their_sessions_and_sets_states():
    executor = MigrationExecutor(connection)
    executor.migrate([("live", "0003_attendancesession_ended_at"), ("classes", "0001_initial")])
    old = executor.loader.project_state([("live", "0003_attendancesession_ended_at"), ("classes", "0001_initial")]).apps
    OldUser, OldClass = old.get_model("accounts", "User"), old.get_model("classes", "Class")
    OldSession, OldAttendance = old.get_model("live", "AttendanceSession"), old.get_model("live", "Attendance")
    teacher = OldUser.objects.create(email="t@example.com", name="T", role="teacher")
    student = OldUser.objects.create(email="s@example.com", name="S", role="student")
    klass = OldClass.objects.create(class_name="C", teacher_id=teacher.pk)
    done = OldSession.objects.create(klass_id=klass.pk, started_at=T0, ended_at=T0 + timedelta(hours=1), committed=True)
    failed = OldSession.objects.create(klass_id=klass.pk, started_at=T0 + timedelta(days=1), committed=False)
    for start in (T0, T0 + timedelta(days=1), T0 + timedelta(days=2)):  # the last: a record with no session
        OldAttendance.objects.create(klass_id=klass.pk, student_id=student.pk, status="present", started_at=start)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    sessions = {s.pk: s for s in AttendanceSession.objects.all()}
    assert sessions[done.pk].state == SessionState.PERSISTED and sessions[failed.pk].state == SessionState.EXPIRED
    assert {s.teacher_id for s in sessions.values()} == {teacher.pk}
    assert sessions[done.pk].updated_at == T0 + timedelta(hours=1)
    links = dict(Attendance.objects.values_list("started_at", "session_id"))
    assert links[T0] == done.pk and links[T0 + timedelta(days=1)] == failed.pk
    orphan = sessions[links[T0 + timedelta(days=2)]]
    assert orphan.state == SessionState.EXPIRED and orphan.started_at == T0 + timedelta(days=2)
    assert list(Attendance.objects.counted_in(klass.pk).values_list("started_at", flat=True)) == [T0]
