"""GET /classes, in-process and over the wire (the `site` fixture)."""

import pytest

from classes.models import Enrollment
from tests.support import (
    METHOD_NOT_ALLOWED,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
    auth,
    count_queries,
    make_class,
    make_user,
    make_users,
)


def item(class_id, name, teacher, count):
    return {"_id": class_id, "className": name, "teacherId": teacher.id, "studentCount": count}


def test_a_teacher_gets_their_own_classes_newest_first(site):
    teacher, other_teacher = site.person("teacher"), site.person("teacher")
    ann, bob = site.person("student"), site.person("student")
    first = site.new_class(teacher, [ann, bob], name="First")
    site.new_class(other_teacher, [ann], name="Not mine")
    second = site.new_class(teacher, name="Second")
    assert assert_ok(site.get("/classes", teacher)) == [
        item(second, "Second", teacher, 0),
        item(first, "First", teacher, 2),
    ]


def test_a_student_gets_their_enrolled_classes_latest_enrolment_first(site):
    teacher, other_teacher = site.person("teacher"), site.person("teacher")
    ann, bob = site.person("student"), site.person("student")
    older = site.new_class(teacher, [bob], name="Older class")
    newer = site.new_class(other_teacher, [bob], name="Newer class")
    site.new_class(teacher, [bob], name="Not Ann's")
    site.enrol(other_teacher, newer, ann)
    site.enrol(teacher, older, ann)  # enrolled in the older class last
    assert assert_ok(site.get("/classes", ann)) == [
        item(older, "Older class", teacher, 2),
        item(newer, "Newer class", other_teacher, 2),
    ]


def test_nobody_without_classes_gets_an_empty_list(site):
    assert assert_ok(site.get("/classes", site.person("teacher"))) == []
    assert assert_ok(site.get("/classes", site.person("student"))) == []


def test_classes_needs_a_token(site):
    assert_error(site.get("/classes"), 401, UNAUTHORIZED)
    assert_error(site.request("POST", "/classes"), 405, METHOD_NOT_ALLOWED)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["teacher", "student"])
def test_query_count_does_not_grow_with_classes_or_students(client, role):
    teacher = make_user("teacher")
    student = make_user("student")
    caller = teacher if role == "teacher" else student
    make_class(teacher, [student])
    one = count_queries(lambda: client.get("/classes", headers=auth(caller)))
    students = make_users("student", 29)
    for _ in range(19):
        klass = make_class(teacher, [student])
        Enrollment.objects.bulk_create([Enrollment(klass=klass, student=other) for other in students])
    data = assert_ok(client.get("/classes", headers=auth(caller)))
    assert len(data) == 20 and data[0]["studentCount"] == 30
    assert count_queries(lambda: client.get("/classes", headers=auth(caller))) == one


@pytest.mark.django_db
def test_class_sizes_are_counted_from_the_class_index_alone_on_sqlite():
    """COUNT(*) over the class index, without reading each enrolment's row (its string id is not in the index)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from classes.services import class_sizes

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's query plan")
    teacher = make_user("teacher")
    klass = make_class(teacher, make_users("student", 3))
    with CaptureQueriesContext(connection) as queries:
        assert class_sizes([str(klass.id)]) == {str(klass.id): 3}
    [sql] = [query["sql"] for query in queries]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        plan = " ".join(str(row[-1]) for row in cursor.fetchall())
    assert "COVERING INDEX" in plan, plan


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["teacher", "student"])
def test_on_sql_the_classes_come_with_their_sizes_in_one_query_counted_from_the_class_index(role):
    """A correlated COUNT per class in the listing query (no second query, no GROUP BY); MongoDB's backend runs
    no correlated subquery, and keeps the two queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from classes.services import classes_of

    teacher, student = make_user("teacher"), make_user("student")
    caller = teacher if role == "teacher" else student
    full = make_class(teacher, [student, *make_users("student", 2)], name="Full")
    empty = make_class(teacher, [student] if role == "student" else [], name="Empty")
    with CaptureQueriesContext(connection) as queries:
        listed = classes_of(caller)
    assert [(item.id, item.studentCount) for item in listed] == [
        (str(empty.id), 1 if role == "student" else 0),
        (str(full.id), 3),
    ]
    if connection.vendor == "mongodb":
        assert len(queries) == 2
        return
    [sql] = [query["sql"] for query in queries]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
        assert "CORRELATED SCALAR SUBQUERY" in plan and "COVERING INDEX" in plan, plan
