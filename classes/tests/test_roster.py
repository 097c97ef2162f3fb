"""The roster: POST /class/:id/students {emails} and DELETE /class/:id/students/:studentId, in-process and over the
wire, with the check order 401 → 403 role → 400 schema → 404 class → 403 ownership (→ 404 student)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from classes import services
from classes.models import Enrollment
from tests.support import (
    CLASS_NOT_FOUND,
    INVALID_SCHEMA,
    MALFORMED_IDS,
    METHOD_NOT_ALLOWED,
    MISSING_ID,
    NOT_CLASS_TEACHER,
    NOT_ENROLLED,
    STUDENT_NOT_FOUND,
    TEACHER_REQUIRED,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
    make_class,
    make_user,
    needs_threads,
)


def roster(site, class_id, emails, who=None):
    return site.post(f"/class/{class_id}/students", {"emails": emails}, who)


def remove(site, class_id, student_id, who=None):
    return site.request("DELETE", f"/class/{class_id}/students/{student_id}", who)


def test_enrols_existing_students_and_sorts_the_rest(site):
    teacher, other_teacher = site.person("teacher"), site.person("teacher")
    ann, bob, cleo = (site.person("student", name) for name in ("Ann", "Bob", "Cleo"))
    class_id = site.new_class(teacher, [bob])
    emails = [
        f"  {ann.email.upper()} ",  # compared as log-in does: trimmed, case ignored
        bob.email,
        "nobody@example.com",
        other_teacher.email,
        cleo.email,
        ann.email,  # a repeat counts once
        "not an address",
    ]
    data = assert_ok(roster(site, class_id, emails, teacher))
    assert data == {
        "added": [ann.id, cleo.id],
        "alreadyEnrolled": [bob.id],
        "notFound": ["nobody@example.com", "not an address"],
        "notStudents": [other_teacher.email],
    }
    enrolled = site.enrolled(teacher, class_id)
    assert sorted(enrolled) == sorted([bob.id, ann.id, cleo.id])
    # One request's enrolments keep the order given. (Against Bob's, made by another request, the order is the
    # ObjectIds': two server processes in the same second may make them in either order.)
    assert [sid for sid in enrolled if sid != bob.id] == [ann.id, cleo.id]
    # Enrolled for real: the new students may read the class.
    assert assert_ok(site.get(f"/class/{class_id}", cleo))["_id"] == class_id
    again = assert_ok(roster(site, class_id, [ann.email, cleo.email], teacher))
    assert again == {"added": [], "alreadyEnrolled": [ann.id, cleo.id], "notFound": [], "notStudents": []}


def test_an_empty_list_changes_nothing(site):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher)
    assert assert_ok(roster(site, class_id, [], teacher)) == {
        "added": [], "alreadyEnrolled": [], "notFound": [], "notStudents": []
    }


def test_at_most_a_thousand_addresses(site):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher)
    many = [f"s{n}@example.com" for n in range(1000)]
    assert len(assert_ok(roster(site, class_id, many, teacher))["notFound"]) == 1000
    assert_error(roster(site, class_id, [*many, "one-more@example.com"], teacher), 400, INVALID_SCHEMA)


@pytest.mark.parametrize(
    "body", [{}, {"emails": "a@example.com"}, {"emails": [5]}, {"emails": [None]}, {"emails": None}]
)
def test_bad_body_is_400(site, body):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher)
    assert_error(site.post(f"/class/{class_id}/students", body, teacher), 400, INVALID_SCHEMA)


def test_roster_check_order(site):
    teacher, other, student = site.person("teacher"), site.person("teacher"), site.person("student")
    class_id = site.new_class(teacher)
    assert_error(roster(site, class_id, [student.email]), 401, UNAUTHORIZED)
    assert_error(roster(site, class_id, [student.email], student), 403, TEACHER_REQUIRED)
    assert_error(site.post(f"/class/{MISSING_ID}/students", {"emails": 1}, teacher), 400, INVALID_SCHEMA)
    assert_error(roster(site, MISSING_ID, [student.email], teacher), 404, CLASS_NOT_FOUND)
    assert_error(roster(site, MALFORMED_IDS[0], [student.email], teacher), 404, CLASS_NOT_FOUND)
    assert_error(roster(site, class_id, [student.email], other), 403, NOT_CLASS_TEACHER)
    assert site.enrolled(teacher, class_id) == []
    assert_error(site.request("GET", f"/class/{class_id}/students", teacher), 405, METHOD_NOT_ALLOWED)


def test_removing_a_student_keeps_their_records(site):
    teacher, ann, bob = site.person("teacher"), site.person("student", "Ann"), site.person("student", "Bob")
    class_id = site.new_class(teacher, [ann, bob], name="Geo")
    site.session(teacher, class_id, {ann.id: "present", bob.id: "absent"})
    data = assert_ok(remove(site, class_id, bob.id, teacher))
    assert data["studentIds"] == [ann.id] and data["className"] == "Geo" and data["minRate"] == 0.8
    assert site.enrolled(teacher, class_id) == [ann.id]
    assert_error(site.get(f"/class/{class_id}/my-history", bob), 403, NOT_ENROLLED)
    report = assert_ok(site.get(f"/class/{class_id}/report", teacher))
    assert [(s["_id"], s["absent"]) for s in report["students"]] == [(ann.id, 0), (bob.id, 1)]  # records stay
    # Not enrolled any more: removing again is not found; so is an unknown or malformed id, or a teacher.
    for student_id in (bob.id, MISSING_ID, *MALFORMED_IDS[:2], teacher.id):
        assert_error(remove(site, class_id, student_id, teacher), 404, STUDENT_NOT_FOUND)
    # Enrolled again later: back in the class.
    assert assert_ok(roster(site, class_id, [bob.email], teacher))["added"] == [bob.id]


def test_remove_check_order(site):
    teacher, other, student = site.person("teacher"), site.person("teacher"), site.person("student")
    class_id = site.new_class(teacher, [student])
    assert_error(remove(site, class_id, student.id), 401, UNAUTHORIZED)
    assert_error(remove(site, class_id, student.id, student), 403, TEACHER_REQUIRED)
    assert_error(remove(site, MISSING_ID, student.id, teacher), 404, CLASS_NOT_FOUND)
    assert_error(remove(site, class_id, student.id, other), 403, NOT_CLASS_TEACHER)
    assert_error(remove(site, class_id, MISSING_ID, other), 403, NOT_CLASS_TEACHER)  # ownership before the student
    assert site.enrolled(teacher, class_id) == [student.id]
    assert_error(site.request("POST", f"/class/{class_id}/students/{student.id}", teacher), 405, METHOD_NOT_ALLOWED)


# --- open sockets follow the roster (over the wire) -----------------------------------------------------------


@pytest.mark.wire
async def test_the_roster_reaches_open_sockets_at_once(api, wire_server, wire_sockets):
    import asyncio

    from tests.support import Person, ask, create_class, mark, marked, recv, silent, start

    teacher, kept, late = [await asyncio.to_thread(Person, api, role) for role in ("teacher", "student", "student")]
    class_id = await asyncio.to_thread(create_class, api, teacher)
    await asyncio.to_thread(roster_over, api, teacher, class_id, [kept.email])
    await asyncio.to_thread(start, api, teacher, class_id)
    teacher_ws = await wire_sockets(wire_server, teacher)
    kept_ws, late_ws = await wire_sockets(wire_server, kept), await wire_sockets(wire_server, late)

    # Enrolled by the roster while connected: the class's broadcasts reach the socket at once.
    added = await asyncio.to_thread(roster_over, api, teacher, class_id, [late.email])
    assert added["added"] == [late.id]
    assert await ask(teacher_ws, mark(late.id, "late")) == marked(late.id, "late")
    assert await recv(late_ws) == marked(late.id, "late")
    assert await recv(kept_ws) == marked(late.id, "late")

    # Removed: they stop at once; the others still get them.
    response = await asyncio.to_thread(
        api.request, "DELETE", f"/class/{class_id}/students/{late.id}", headers=teacher.headers
    )
    assert_ok(response)
    assert await ask(teacher_ws, mark(kept.id, "present")) == marked(kept.id, "present")
    assert await recv(kept_ws) == marked(kept.id, "present")
    await silent(late_ws)


def roster_over(api, teacher, class_id, emails):
    return assert_ok(api.post(f"/class/{class_id}/students", json={"emails": emails}, headers=teacher.headers))


@needs_threads
@pytest.mark.django_db(transaction=True)
def test_students_enrolled_concurrently_are_answered_already_enrolled(monkeypatch):
    """Another request enrols one of them between the read and the bulk insert (committed on a connection of
    its own): the insert fails, the students are enrolled one at a time, and the one the other request enrolled
    is "alreadyEnrolled", not "added"."""
    teacher, ann, bob = make_user("teacher"), make_user("student"), make_user("student")
    klass = make_class(teacher, [])
    real_bulk_create = Enrollment.objects.bulk_create

    def enrol_bob() -> None:
        try:
            Enrollment.objects.create(klass_id=klass.id, student_id=bob.id)
        finally:
            connection.close()

    def someone_enrols_bob_first(rows, *args, **kwargs):
        other = threading.Thread(target=enrol_bob)
        other.start()
        other.join()
        return real_bulk_create(rows, *args, **kwargs)

    monkeypatch.setattr(Enrollment.objects, "bulk_create", someone_enrols_bob_first)
    result = services.enrol_by_email(klass, [ann.email, bob.email])
    assert (result.added, result.alreadyEnrolled) == ([ann.id], [bob.id])
    enrolled = Enrollment.objects.filter(klass_id=klass.id).values_list("student_id", flat=True)
    assert sorted(enrolled) == sorted([ann.id, bob.id])
