"""PATCH /class/:id (rename, minRate, maxConsecutiveAbsences), in-process and over the wire, with the check order
401 → 403 role → 400 schema → 404 class → 403 ownership; and the migration that gives existing classes the
defaults."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.support import (
    CLASS_NOT_FOUND,
    INVALID_SCHEMA,
    MALFORMED_IDS,
    MISSING_ID,
    NOT_CLASS_TEACHER,
    TEACHER_REQUIRED,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
)


def patch(site, class_id, body, who=None):
    return site.request("PATCH", f"/class/{class_id}", who, body=body)


def test_teacher_renames_and_sets_the_at_risk_settings(site):
    teacher, student = site.person("teacher"), site.person("student")
    class_id = site.new_class(teacher, [student], name="Maths 101")
    body = {"className": "  Maths 102 ", "minRate": 0.9, "maxConsecutiveAbsences": 5}
    data = assert_ok(patch(site, class_id, body, teacher))
    assert data == {
        "_id": class_id,
        "className": "Maths 102",
        "teacherId": teacher.id,
        "studentIds": [student.id],
        "minRate": 0.9,
        "maxConsecutiveAbsences": 5,
    }
    detail = assert_ok(site.get(f"/class/{class_id}", teacher))
    assert (detail["className"], detail["minRate"], detail["maxConsecutiveAbsences"]) == ("Maths 102", 0.9, 5)
    assert assert_ok(site.get(f"/class/{class_id}", student))["minRate"] == 0.9  # an enrolled student sees them
    classes = assert_ok(site.get("/classes", teacher))
    assert [c["className"] for c in classes] == ["Maths 102"]


def test_fields_left_out_or_null_stay(site):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher, name="Art")
    assert_ok(patch(site, class_id, {"minRate": 0.5}, teacher))
    data = assert_ok(patch(site, class_id, {"maxConsecutiveAbsences": 1, "className": None}, teacher))
    assert (data["className"], data["minRate"], data["maxConsecutiveAbsences"]) == ("Art", 0.5, 1)
    data = assert_ok(patch(site, class_id, {}, teacher))
    assert (data["className"], data["minRate"], data["maxConsecutiveAbsences"]) == ("Art", 0.5, 1)


@pytest.mark.parametrize("body", [{"minRate": 0}, {"minRate": 1}, {"minRate": 1.0}, {"maxConsecutiveAbsences": 100}])
def test_bounds_are_inclusive(site, body):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher)
    data = assert_ok(patch(site, class_id, body, teacher))
    [(key, value)] = body.items()
    assert data[key] == value


@pytest.mark.parametrize(
    "body",
    [
        {"minRate": -0.01},
        {"minRate": 1.01},
        {"minRate": "0.5"},
        {"minRate": True},
        {"maxConsecutiveAbsences": 0},
        {"maxConsecutiveAbsences": 101},
        {"maxConsecutiveAbsences": 2.5},
        {"maxConsecutiveAbsences": "3"},
        {"className": "   "},
        {"className": 5},
        {"className": "x" * 201},
        [],
    ],
)
def test_bad_body_is_400(site, body):
    teacher = site.person("teacher")
    class_id = site.new_class(teacher, name="Kept")
    assert_error(patch(site, class_id, body, teacher), 400, INVALID_SCHEMA)
    detail = assert_ok(site.get(f"/class/{class_id}", teacher))
    assert (detail["className"], detail["minRate"], detail["maxConsecutiveAbsences"]) == ("Kept", 0.8, 3)


def test_check_order(site):
    teacher, other, student = site.person("teacher"), site.person("teacher"), site.person("student")
    class_id = site.new_class(teacher, [student])
    bad = {"minRate": 2}
    assert_error(patch(site, class_id, bad), 401, UNAUTHORIZED)
    assert_error(patch(site, class_id, bad, student), 403, TEACHER_REQUIRED)  # role before schema
    assert_error(patch(site, MISSING_ID, bad, teacher), 400, INVALID_SCHEMA)  # schema before existence
    assert_error(patch(site, MISSING_ID, {"minRate": 0.5}, teacher), 404, CLASS_NOT_FOUND)
    for malformed in MALFORMED_IDS:
        assert_error(patch(site, malformed, {"minRate": 0.5}, teacher), 404, CLASS_NOT_FOUND)
    assert_error(patch(site, class_id, {"minRate": 0.5}, other), 403, NOT_CLASS_TEACHER)
    assert assert_ok(site.get(f"/class/{class_id}", teacher))["minRate"] == 0.8


@pytest.mark.django_db(transaction=True)
def test_migration_gives_existing_classes_the_defaults():
    from classes.models import Class

    executor = MigrationExecutor(connection)
    executor.migrate([("classes", "0001_initial")])
    old = executor.loader.project_state([("classes", "0001_initial")]).apps
    teacher = old.get_model("accounts", "User").objects.create(email="t@example.com", name="T", role="teacher")
    klass = old.get_model("classes", "Class").objects.create(class_name="Old", teacher_id=teacher.pk)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    migrated = Class.objects.get(pk=klass.pk)
    assert (migrated.class_name, migrated.min_rate, migrated.max_consecutive_absences) == ("Old", 0.8, 3)
    assert Class.objects.filter(min_rate=0.8, max_consecutive_absences=3).count() == 1  # stored, not just read so
