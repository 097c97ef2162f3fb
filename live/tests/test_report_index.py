"""Migration 0009: the index of a student's latest record also holds its status and session, so that a report's
counts read the index alone (live/models.py attendance_latest). Run on every backend CI runs (SQLite, PostgreSQL,
MongoDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from classes.models import Class
from live import history
from live.models import Attendance

BEFORE = [("live", "0008_checkin"), ("classes", "0002_class_settings")]
WIDENED = ["classId", "studentId", "startedAt", "status", "sessionId"]


def latest_index_columns() -> list[str]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "attendance")
    return list(constraints["attendance_latest"]["columns"])


def add_records_before(executor: MigrationExecutor) -> tuple[list[tuple[Any, ...]], str, str, str]:
    """A class of two students with three persisted sessions, written with the models as of BEFORE: its records'
    (id, student, session, status, startedAt), the class's id and the two students'."""
    assert latest_index_columns() == ["classId", "studentId", "startedAt"]
    old = executor.loader.project_state(BEFORE).apps
    OldUser, OldClass = old.get_model("accounts", "User"), old.get_model("classes", "Class")
    OldEnrollment, OldSession = old.get_model("classes", "Enrollment"), old.get_model("live", "AttendanceSession")
    OldAttendance = old.get_model("live", "Attendance")
    teacher = OldUser.objects.create(email="t@example.com", name="T", role="teacher")
    ann = OldUser.objects.create(email="ann@example.com", name="Ann", role="student")
    bob = OldUser.objects.create(email="bob@example.com", name="Bob", role="student")
    klass = OldClass.objects.create(class_name="C", teacher_id=teacher.pk)
    for student in (ann, bob):
        OldEnrollment.objects.create(klass_id=klass.pk, student_id=student.pk)
    first = datetime(2026, 3, 2, 9, tzinfo=UTC)
    statuses = {ann.pk: ["present", "absent", "late"], bob.pk: ["absent", "excused", "absent"]}
    for n in range(3):
        started = first + timedelta(days=n)
        session = OldSession.objects.create(
            klass_id=klass.pk, teacher_id=teacher.pk, state="persisted", marks={}, started_at=started,
            ended_at=started, updated_at=started,
        )
        for student_id, marks in statuses.items():
            OldAttendance.objects.create(
                klass_id=klass.pk, student_id=student_id, session_id=session.pk, started_at=started, status=marks[n]
            )
    records = sorted(OldAttendance.objects.values_list("id", "student_id", "session_id", "status", "started_at"))
    return records, klass.pk, ann.pk, bob.pk


@pytest.mark.django_db(transaction=True)
def test_migration_widens_the_latest_record_index_and_keeps_every_record() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        records, klass_id, ann_id, bob_id = add_records_before(executor)
    finally:  # the tests after this one run on the latest schema whatever happens here
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert latest_index_columns() == WIDENED
    assert sorted(Attendance.objects.values_list("id", "student_id", "session_id", "status", "started_at")) == records

    report = history.class_report(Class.objects.get(pk=klass_id))
    assert report.sessions == 3
    counted = {s.id: (s.present, s.absent, s.late, s.excused, s.consecutiveAbsences) for s in report.students}
    assert counted == {ann_id: (1, 1, 1, 0, 0), bob_id: (0, 2, 0, 1, 2)}


@pytest.mark.django_db
def test_a_report_s_counts_read_the_index_alone_on_sqlite() -> None:
    """Each status is counted by the status, which the index holds (a count of the key read every record)."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's query plan")
    assert latest_index_columns() == WIDENED
    klass_id = "6b1562f77e46f34e8908c045"
    ids = ["6b1562f77e46f34e8908c046", "6b1562f77e46f34e8908c047"]
    for read in (history._counts, history._absences):
        with CaptureQueriesContext(connection) as queries:
            read(klass_id, ids)
        [sql] = [query["sql"] for query in queries]
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
        assert "COVERING INDEX attendance_latest" in plan, plan
