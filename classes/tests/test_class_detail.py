"""GET /class/:id, in-process and over the wire (the `site` fixture); query counts in-process."""

import pytest

from classes.models import Enrollment
from tests.support import (
    CLASS_NOT_FOUND,
    MALFORMED_IDS,
    METHOD_NOT_ALLOWED,
    MISSING_ID,
    NOT_CLASS_TEACHER,
    NOT_FOUND,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
    auth,
    count_queries,
    make_class,
    make_users,
)


def detail(site, class_id, who=None):
    return site.get(f"/class/{class_id}", who)


def member(person):
    return {"_id": person.id, "name": person.name, "email": person.email}


def test_owning_teacher_and_enrolled_students_get_class_with_students_populated(site):
    teacher, student, second = site.person("teacher"), site.person("student"), site.person("student", "Second")
    class_id = site.new_class(teacher, [student, second], name="Maths 101")

    expected = {
        "_id": class_id,
        "className": "Maths 101",
        "teacherId": teacher.id,
        "students": [member(student), member(second)],
        "minRate": 0.8,
        "maxConsecutiveAbsences": 3,
    }
    assert assert_ok(detail(site, class_id, teacher)) == expected
    assert assert_ok(detail(site, class_id, student)) == expected
    assert assert_ok(detail(site, class_id, second)) == expected


def test_class_without_students(site):
    teacher = site.person("teacher")
    assert assert_ok(detail(site, site.new_class(teacher), teacher))["students"] == []


def test_enrolled_student_gets_class(site):
    teacher, student = site.person("teacher"), site.person("student")
    class_id = site.new_class(teacher, [student], name="Maths 101")
    assert assert_ok(detail(site, class_id, student))["students"] == [member(student)]


def test_other_teacher_is_403(site):
    teacher, student = site.person("teacher"), site.person("student")
    class_id = site.new_class(teacher, [student])
    assert_error(detail(site, class_id, site.person("teacher")), 403, NOT_CLASS_TEACHER)


def test_student_not_enrolled_is_403(site):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher, [site.person("student")])
    assert_error(detail(site, class_id, site.person("student")), 403, NOT_CLASS_TEACHER)


@pytest.mark.django_db
def test_student_removed_from_class_is_403(client, teacher, student):
    """No route removes a student: in-process only."""
    klass = make_class(teacher, [student])
    assert_ok(client.get(f"/class/{klass.id}", headers=auth(student)))
    Enrollment.objects.filter(klass=klass, student=student).delete()
    assert_error(client.get(f"/class/{klass.id}", headers=auth(student)), 403, NOT_CLASS_TEACHER)


def test_without_token_is_401(site):
    class_id = site.new_class(site.person("teacher"))
    assert_error(detail(site, class_id), 401, UNAUTHORIZED)
    assert_error(detail(site, class_id, "garbage"), 401, UNAUTHORIZED)
    assert_error(detail(site, MISSING_ID), 401, UNAUTHORIZED)


@pytest.mark.parametrize("who", ["teacher", "student"])
@pytest.mark.parametrize("class_id", [MISSING_ID, *MALFORMED_IDS])
def test_unknown_or_malformed_class_is_404(site, who, class_id):
    assert_error(detail(site, class_id, site.person(who)), 404, CLASS_NOT_FOUND)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
@pytest.mark.parametrize("class_id", ["x", MISSING_ID])
def test_wrong_method_is_405_before_auth(site, method, class_id):
    assert_error(site.request(method, f"/class/{class_id}"), 405, METHOD_NOT_ALLOWED)


def test_trailing_slash_is_404(site):
    teacher = site.person("teacher")
    assert_error(site.get(f"/class/{site.new_class(teacher)}/", teacher), 404, NOT_FOUND)


@pytest.mark.django_db
@pytest.mark.parametrize("viewer", ["teacher", "student"])
def test_query_count_does_not_grow_with_students(client, teacher, student, viewer):
    klass = make_class(teacher, [student])
    headers = auth(teacher if viewer == "teacher" else student)
    one = count_queries(lambda: client.get(f"/class/{klass.id}", headers=headers))
    for other in make_users("student", 29):
        Enrollment.objects.create(klass=klass, student=other)
    assert len(assert_ok(client.get(f"/class/{klass.id}", headers=headers))["students"]) == 30
    assert count_queries(lambda: client.get(f"/class/{klass.id}", headers=headers)) == one


@pytest.mark.django_db
@pytest.mark.parametrize("change", [{"name": "Renamed"}, {"email": "renamed@example.com"}])
def test_a_student_changed_in_the_database_shows_as_they_are_now(client, teacher, student, change):
    """Members are validated once and remembered (accounts.services.RememberedMembers) by their id, name and
    email together: a change of either is another member, shown from the next request on."""
    from accounts.models import User
    from classes.services import class_detail

    klass = make_class(teacher, [student])
    assert assert_ok(client.get(f"/class/{klass.id}", headers=auth(teacher)))["students"] == [member(student)]
    # Remembered: the same instance serves the next response.
    assert class_detail(klass.id, teacher).students[0] is class_detail(klass.id, teacher).students[0]
    User.objects.filter(pk=student.id).update(**change)
    student.refresh_from_db()
    assert assert_ok(client.get(f"/class/{klass.id}", headers=auth(teacher)))["students"] == [member(student)]
    assert member(student) in assert_ok(client.get("/students", headers=auth(teacher)))


def test_remembered_members_are_bounded_and_in_the_rows_order():
    from accounts.services import RememberedMembers

    ids = ["5f0c0ffee0ddba11deadbee" + c for c in "0123"]
    rows = [(pk, f"N{n}", f"n{n}@example.com") for n, pk in enumerate(ids)]
    remembered = RememberedMembers(size=2)
    first = remembered(rows[:2])
    assert [(m.id, m.name, m.email) for m in first] == rows[:2]
    mixed = remembered([rows[1], rows[2], rows[0]])  # one known, one new, one known
    assert [(m.id, m.name, m.email) for m in mixed] == [rows[1], rows[2], rows[0]]
    assert mixed[0] is first[1] and mixed[2] is first[0]
    assert len(remembered._known) == 2  # the oldest dropped
    assert remembered([rows[3]])[0].id == ids[3] and len(remembered._known) == 2
