"""common/prepared.py: a query compiled once gives what the ORM gives, reads the database each time, and falls
back to the ORM where it cannot be compiled once. Runs on every backend of CI (SQLite, PostgreSQL, MongoDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django.db import connection
from django.db.models import Count, F, Q
from django.test.utils import CaptureQueriesContext

from accounts.auth import user_from_claims
from accounts.models import User
from classes.models import Class, Enrollment
from common.prepared import MAX_LIST, PreparedInstance, PreparedInstances, PreparedQuery
from tests.support import make_class, make_user

pytestmark = pytest.mark.django_db

ON_SQL = connection.vendor != "mongodb"


def members(class_id: str) -> Any:
    return User.objects.filter(enrollments__klass_id=class_id).order_by("enrollments__id").values_list("id", "name")


def enrolments_with_names(student_id: str) -> Any:
    # Annotations asked first: values_list's order is not the SELECT's.
    return (
        Enrollment.objects.filter(student_id=student_id)
        .order_by("id")
        .annotate(klass_name=F("klass__class_name"))
        .values_list("klass_name", "klass_id")
    )


def test_rows_are_the_orms_in_order_on_a_join_and_flat() -> None:
    teacher = make_user("teacher")
    students = [make_user("student", f"S{n}") for n in range(3)]
    klass = make_class(teacher, students)
    make_class(teacher, students[:1])  # rows of another class stay out
    prepared = PreparedQuery(User, members)
    assert prepared(klass.id) == list(members(klass.id)) == [(s.id, s.name) for s in students]

    flat = PreparedQuery(User, lambda class_id: members(class_id).values_list("email", flat=True))
    assert flat(klass.id) == [s.email for s in students]


def test_an_annotated_values_list_keeps_the_order_it_asks_for() -> None:
    teacher = make_user("teacher")
    student = make_user("student")
    first, second = make_class(teacher, [student], name="First"), make_class(teacher, [student], name="Second")
    prepared = PreparedQuery(Enrollment, enrolments_with_names)
    assert prepared(student.id) == list(enrolments_with_names(student.id))
    assert prepared(student.id) == [("First", first.id), ("Second", second.id)]


def test_two_parameters_each_in_its_place() -> None:
    teacher = make_user("teacher")
    student, other = make_user("student"), make_user("student")
    klass = make_class(teacher, [student])
    enrolment = PreparedQuery(
        Enrollment,
        lambda class_id, student_id: Enrollment.objects.filter(klass_id=class_id, student_id=student_id).values_list(
            "student_id", flat=True
        ),
    )
    assert enrolment(klass.id, student.id) == [student.id]
    assert enrolment(klass.id, other.id) == []
    assert enrolment(student.id, klass.id) == []


def test_an_instance_is_the_models_with_the_databases_types() -> None:
    user = make_user("teacher", "Ada")
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    User.objects.filter(pk=user.id).update(last_login=when)
    found = PreparedInstance(User, lambda pk: User.objects.filter(pk=pk))(user.id)
    stored = User.objects.get(pk=user.id)
    assert isinstance(found, User)
    assert {f.attname: getattr(found, f.attname) for f in User._meta.concrete_fields} == {
        f.attname: getattr(stored, f.attname) for f in User._meta.concrete_fields
    }
    assert found.last_login == when and found.is_active is True and found._state.adding is False
    assert not found.role_changed  # from_db ran: the role as read is known
    assert PreparedInstance(Class, lambda pk: Class.objects.filter(pk=pk))(user.id) is None


def test_instances_are_the_orms_in_its_order() -> None:
    teacher = make_user("teacher")
    classes = [make_class(teacher, [], name=name) for name in ("B", "A", "C")]
    ids = [klass.id for klass in classes]
    prepared = PreparedInstances(Class, lambda pks: Class.objects.filter(pk__in=pks).order_by("class_name"))
    found = prepared(ids)
    assert [type(k) for k in found] == [Class] * 3 and all(k._state.adding is False for k in found)
    assert [(k.id, k.class_name, k.teacher_id) for k in found] == list(
        Class.objects.filter(pk__in=ids).order_by("class_name").values_list("id", "class_name", "teacher_id")
    )
    assert [k.class_name for k in prepared(ids[:2])] == ["A", "B"]
    assert prepared([]) == []


def test_each_call_is_one_query_that_reads_the_database_as_it_is_now() -> None:
    user = make_user("student")
    claims = {"userId": user.id, "role": "student"}
    with CaptureQueriesContext(connection) as queries:
        assert user_from_claims(claims) == user
        assert user_from_claims(claims) == user
    assert len(queries) == 2
    User.objects.filter(pk=user.id).update(is_active=False)
    assert user_from_claims(claims) is None  # a deactivation counts from the next request
    User.objects.filter(pk=user.id).update(is_active=True)
    assert user_from_claims(claims) == user
    User.objects.filter(pk=user.id).delete()
    assert user_from_claims(claims) is None


@pytest.mark.skipif(not ON_SQL, reason="MongoDB's compiler makes no SQL: every call is the ORM's")
def test_on_sql_the_query_is_compiled_once() -> None:
    user = make_user("student")
    builds: list[str] = []

    def build(pk: str) -> Any:
        builds.append(pk)
        return User.objects.filter(pk=pk).values_list("name", flat=True)

    prepared = PreparedQuery(User, build)
    assert [prepared(user.id) for _ in range(3)] == [[user.name]] * 3
    assert len(builds) == 1 and builds[0] != user.id  # built once, with a marker for the id


def test_what_cannot_be_compiled_once_is_the_orms_each_time() -> None:
    teacher = make_user("teacher")
    klass = make_class(teacher, [make_user("student")])

    def used_twice(pk: str) -> Any:  # the marker appears twice in the parameters: each place must get the value
        return Class.objects.filter(Q(pk=pk) | Q(teacher_id=pk)).values_list("class_name", flat=True)

    def not_a_values_list(pk: str) -> Any:
        return Class.objects.filter(pk=pk)

    def empty(pk: str) -> Any:  # compiles to no SQL at all
        return Class.objects.filter(pk__in=[]).values_list("id", flat=True)

    assert PreparedQuery(Class, used_twice)(klass.id) == [klass.class_name]
    assert PreparedQuery(Class, used_twice)(teacher.id) == [klass.class_name]
    assert PreparedQuery(Class, not_a_values_list)(klass.id) == [klass]
    assert PreparedQuery(Class, empty)(klass.id) == []
    names = PreparedQuery(Class, lambda teacher_id: Class.objects.filter(teacher_id=teacher_id).values_list("id"))
    assert names(teacher.id) == [(klass.id,)]


def test_a_value_that_is_no_string_is_the_orms() -> None:
    teacher = make_user("teacher")
    klass = make_class(teacher)
    by_teacher = PreparedQuery(Class, lambda teacher_id: Class.objects.filter(teacher_id=teacher_id).values_list("id"))
    assert by_teacher(teacher.id) == [(klass.id,)]
    assert by_teacher(teacher) == [(klass.id,)]  # type: ignore[arg-type]  # a model instance, as the ORM takes it


def sizes(class_ids: list[str]) -> Any:
    return (
        Enrollment.objects.filter(klass_id__in=class_ids)
        .order_by()
        .values("klass_id")
        .annotate(n=Count("id"))
        .values_list("klass_id", "n")
    )


def test_a_list_is_compiled_once_per_length_and_each_call_reads_its_own_values() -> None:
    teacher = make_user("teacher")
    students = [make_user("student") for _ in range(3)]
    classes = [make_class(teacher, students[:size]) for size in (1, 2, 3)]
    builds: list[int] = []

    def build(class_ids: list[str]) -> Any:
        builds.append(len(class_ids))
        return sizes(class_ids)

    prepared = PreparedQuery(Enrollment, build)
    one, two, three = (klass.id for klass in classes)
    assert dict(prepared([one, two])) == {one: 1, two: 2} == dict(sizes([one, two]))
    assert dict(prepared([two, three])) == {two: 2, three: 3}
    assert dict(prepared([three])) == {three: 3}
    assert dict(prepared([one, one])) == {one: 1}  # a repeated id counts once, as the ORM's IN
    assert dict(prepared([])) == {}
    if ON_SQL:
        assert builds == [2, 1, 0]  # each length compiled once, [] too
        with CaptureQueriesContext(connection) as queries:
            assert prepared([]) == []
        assert len(queries) == 0  # nothing can match an empty list: no query, as Django runs none
        assert builds == [2, 1, 0]
    too_long = [one] + [teacher.id] * MAX_LIST
    assert dict(prepared(too_long)) == {one: 1}  # longer than MAX_LIST: the ORM's


def test_a_string_and_a_list_together() -> None:
    teacher = make_user("teacher")
    student, other = make_user("student"), make_user("student")
    first, second = make_class(teacher, [student, other]), make_class(teacher, [student])
    enrolled = PreparedQuery(
        Enrollment,
        lambda student_id, class_ids: Enrollment.objects.filter(student_id=student_id, klass_id__in=class_ids)
        .order_by("id")
        .values_list("klass_id", flat=True),
    )
    assert enrolled(student.id, [first.id, second.id]) == [first.id, second.id]
    assert enrolled(other.id, [first.id, second.id]) == [first.id]
    assert enrolled(other.id, [second.id, teacher.id]) == []


def test_a_lookup_that_changes_its_value_is_the_orms() -> None:
    """iexact is LIKE with its value escaped on SQLite: a marker passed through unchanged would let `_` match any
    character. A number field turns the marker down: the ORM takes the string, as it would."""
    make_user("student", email="axb@example.com")
    by_email = PreparedQuery(
        User, lambda email: User.objects.filter(email__iexact=email).values_list("email", flat=True)
    )
    assert by_email("A_B@example.com") == []
    assert by_email("AXB@EXAMPLE.COM") == ["axb@example.com"]
    teacher = make_user("teacher")
    klass = make_class(teacher)
    Class.objects.filter(pk=klass.pk).update(max_consecutive_absences=4)
    by_runs = PreparedQuery(Class, lambda runs: Class.objects.filter(max_consecutive_absences=runs).values_list("id"))
    assert by_runs("4") == [(klass.id,)]


def logged_in_since(since: datetime) -> Any:
    return User.objects.filter(last_login__gte=since).order_by("last_login").values_list("name", flat=True)


@pytest.mark.parametrize("zone", [UTC, timezone(timedelta(hours=-5))])  # adapted to the database's time zone
def test_an_aware_datetime_is_compiled_once_and_compared_as_the_orm_compares_it(zone: Any) -> None:
    moments = [datetime(2026, 3, 4, 5, 6, 7, micro, tzinfo=UTC) for micro in (0, 1000, 500000)]  # (MongoDB: ms)
    for name, moment in zip("ABC", moments, strict=True):
        User.objects.filter(pk=make_user("student", name).id).update(last_login=moment)
    builds: list[Any] = []

    def build(since: datetime) -> Any:
        builds.append(since)
        return logged_in_since(since)

    prepared = PreparedQuery(User, build)
    for since in [*moments, moments[0] - timedelta(days=1), moments[2] + timedelta(milliseconds=1)]:
        since = since.astimezone(zone)
        assert prepared(since) == list(logged_in_since(since))
    assert prepared(moments[1].astimezone(zone)) == ["B", "C"]  # to the millisecond
    if ON_SQL:
        assert len(builds) == 1 and builds[0] not in moments  # built once, with a marker


def test_a_naive_datetime_is_the_orms() -> None:
    """Django makes it aware in the default time zone, with a warning: the ORM's own business."""
    builds: list[Any] = []

    def build(since: datetime) -> Any:
        builds.append(since)
        return logged_in_since(since)

    naive = datetime(2026, 3, 4, 5, 6, 7)
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        assert PreparedQuery(User, build)(naive) == []
    assert builds == [naive]


def test_deferred_fields_are_left_unread_as_defer_leaves_them() -> None:
    teacher = make_user("teacher", "Ada")
    prepared = PreparedInstances(User, lambda pk: User.objects.filter(pk=pk), deferred=("name", "email"))
    [found] = prepared(teacher.id)
    assert found.get_deferred_fields() == {"name", "email"}
    assert found.role == "teacher"
    with CaptureQueriesContext(connection) as queries:
        assert found.name == "Ada"  # read when asked, as with QuerySet.defer
    assert len(queries) == 1
