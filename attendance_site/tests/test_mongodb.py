"""The MongoDB configuration (attendance_site/mongodb.py, mongo_migrations/, docs/mongodb.md).

Two kinds of test:

- No server needed, so they run everywhere (CI included): the settings that MONGODB_URI selects load, pass
  `manage.py check`, miss no migration, and their migrations render to MongoDB operations with the indexes we
  rely on. Each runs Django in a subprocess with MONGODB_URI pointing at a port where nothing listens, so a
  step that wrongly needs a server fails within the client's bounded timeouts instead of hanging.
- A round trip through the ORM on a real server, run when MONGODB_URI is set (then the rest of the suite runs
  on MongoDB too), skipped with the reason printed when it is not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from attendance_site.mongodb import OBJECT_ID_AUTO_FIELD, mongodb_settings

ROOT = Path(__file__).resolve().parents[2]
NO_SERVER_URI = "mongodb://127.0.0.1:1/attendance_check"  # nothing listens on port 1
SUBPROCESS_TIMEOUT = 120  # seconds; far above a normal run (~2 s), far below "hung"

MONGODB_URI = os.environ.get("MONGODB_URI", "")
needs_server = pytest.mark.skipif(not MONGODB_URI, reason="MONGODB_URI not set: MongoDB tests need a server")


def run_django(*args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    """`manage.py <args>`, or a Python script after django.setup(), under the MongoDB settings."""
    env = {
        **os.environ,
        "MONGODB_URI": NO_SERVER_URI,
        "DJANGO_SETTINGS_MODULE": "attendance_site.settings",
        "DEBUG": "0",
        "SECRET_KEY": "mongodb-settings-check",
    }
    if script is not None:
        prelude = "import django\ndjango.setup()\n"
        command = [sys.executable, "-c", prelude + textwrap.dedent(script)]
    else:
        command = [sys.executable, "manage.py", *args]
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, check=False
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


# --- mongodb_settings() itself ---------------------------------------------------------------------


def test_database_comes_from_the_uri_and_timeouts_are_bounded() -> None:
    database = mongodb_settings("mongodb://db1:27017,db2:27017/attendance?replicaSet=rs0").database
    assert database["ENGINE"] == "django_mongodb_backend"
    assert database["NAME"] == "attendance"
    # The whole connection string goes to HOST (the backend's documented form; parse_uri() is deprecated).
    assert database["HOST"] == "mongodb://db1:27017,db2:27017/attendance?replicaSet=rs0"
    assert 0 < database["OPTIONS"]["serverSelectionTimeoutMS"] <= 30_000
    assert 0 < database["OPTIONS"]["connectTimeoutMS"] <= 30_000


def test_timeouts_in_the_uri_win() -> None:
    database = mongodb_settings("mongodb://127.0.0.1/attendance?serverselectiontimeoutms=30000").database
    assert "serverSelectionTimeoutMS" not in database["OPTIONS"]  # OPTIONS would override the URI's value
    assert "connectTimeoutMS" in database["OPTIONS"]


def test_srv_uri_loads_offline() -> None:
    # pymongo's parse_uri would resolve DNS for mongodb+srv://; settings must load without a network.
    assert mongodb_settings("mongodb+srv://u:p@cluster0.example.net/attendance?w=majority").database["NAME"] == (
        "attendance"
    )


@pytest.mark.parametrize(
    "uri",
    [
        "mongodb://127.0.0.1:27017",  # no database
        "mongodb://127.0.0.1:27017/",
        "mongodb://127.0.0.1:27017/?replicaSet=rs0",
        "mongodb://127.0.0.1:27017/a.b",  # not a database name
        "postgres://127.0.0.1/attendance",
        "127.0.0.1:27017/attendance",
    ],
)
def test_a_uri_without_a_database_is_refused(uri: str) -> None:
    with pytest.raises(ImproperlyConfigured):
        mongodb_settings(uri)


def test_contrib_apps_are_swapped_in_place() -> None:
    apps = [
        "daphne",
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "accounts",
    ]
    swapped = mongodb_settings(NO_SERVER_URI).installed_apps(apps)
    assert swapped == [
        "daphne",
        "attendance_site.mongodb.MongoAdminConfig",
        "attendance_site.mongodb.MongoAuthConfig",
        "attendance_site.mongodb.MongoContentTypesConfig",
        "django.contrib.sessions",
        "accounts",
    ]


# --- The settings MONGODB_URI selects, in a fresh process, with no server -----------------------------


def test_settings_select_django_mongodb_backend() -> None:
    result = run_django(
        script="""
        import json
        from django.apps import apps
        from django.conf import settings
        print(json.dumps({
            "database": settings.DATABASES["default"],
            "default_auto_field": settings.DEFAULT_AUTO_FIELD,
            "migration_modules": settings.MIGRATION_MODULES,
            "auto_fields": {c.label: c.default_auto_field for c in apps.get_app_configs()
                            if c.label in ("admin", "auth", "contenttypes")},
        }))
        """
    )
    resolved = json.loads(result.stdout)
    database = resolved["database"]
    assert database["ENGINE"] == "django_mongodb_backend"
    assert database["NAME"] == "attendance_check"
    assert database["HOST"] == NO_SERVER_URI
    assert database["OPTIONS"]["serverSelectionTimeoutMS"] <= 30_000
    assert resolved["default_auto_field"] == OBJECT_ID_AUTO_FIELD
    assert resolved["auto_fields"] == dict.fromkeys(["admin", "auth", "contenttypes"], OBJECT_ID_AUTO_FIELD)
    assert resolved["migration_modules"] == {
        "admin": "mongo_migrations.admin",
        "auth": "mongo_migrations.auth",
        "contenttypes": "mongo_migrations.contenttypes",
    }


def test_manage_py_check_passes() -> None:
    # --database adds the backend's own model checks (e.g. mongodb.E001: no AutoField on MongoDB).
    result = run_django("check", "--database", "default")
    assert "no issues" in result.stdout


def test_no_migration_is_missing() -> None:
    """`makemigrations --check --dry-run` under the MongoDB settings: our apps and the contrib apps' MongoDB
    migrations (mongo_migrations/) match the models.

    makemigrations also compares the migrations with the history recorded in the database. On SQL an
    unreachable database only makes that step warn (Django catches OperationalError); this backend lets
    pymongo's ServerSelectionTimeoutError through, so it is skipped here: it concerns applied migrations, not
    missing ones."""
    result = run_django(
        script="""
        from unittest import mock
        from django.core.management import call_command
        with mock.patch("django.db.migrations.loader.MigrationLoader.check_consistent_history"):
            call_command("makemigrations", "--check", "--dry-run", verbosity=1)
        """
    )
    assert "No changes detected" in result.stdout


RENDER_MIGRATIONS = """
import json
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import CreateModel
from django.db.migrations.state import ProjectState

connection = connections["default"]
connection.check_database_version_supported = lambda: None  # the one step of connecting that needs a server
loader = MigrationLoader(None)
plan = []
for leaf in loader.graph.leaf_nodes():
    plan += [node for node in loader.graph.forwards_plan(leaf) if node not in plan]
state = ProjectState(real_apps=loader.unmigrated_apps)
rendered = []
for node in plan:
    migration = loader.graph.nodes[node]
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:  # records, runs nothing
        state = migration.apply(state, editor, collect_sql=True)
    primary_keys = [
        f"{op.name}.{type(f).__module__}.{type(f).__name__}"
        for op in migration.operations if isinstance(op, CreateModel)
        for _, f in op.fields if f.primary_key
    ]
    rendered.append({"migration": ".".join(node), "module": type(migration).__module__,
                     "operations": editor.collected_sql, "primary_keys": primary_keys})
print(json.dumps(rendered))
"""


@pytest.fixture(scope="module")
def rendered_migrations() -> list[dict]:
    """Every migration `migrate` would apply on MongoDB, with the MongoDB operations it issues."""
    return json.loads(run_django(script=RENDER_MIGRATIONS).stdout)


def test_contrib_migrations_come_from_mongo_migrations(rendered_migrations: list[dict]) -> None:
    modules = {m["migration"]: m["module"] for m in rendered_migrations}
    for label in ("admin", "auth", "contenttypes"):
        ours = [module for name, module in modules.items() if name.startswith(f"{label}.")]
        assert ours and all(module.startswith(f"mongo_migrations.{label}.") for module in ours), modules


def test_every_primary_key_is_an_object_id(rendered_migrations: list[dict]) -> None:
    keys = {key for m in rendered_migrations for key in m["primary_keys"]}
    object_ids = ("django_mongodb_backend.fields.auto.ObjectIdAutoField", "common.fields.ObjectIdField")
    # sessions keys its rows by session_key (MongoDB still gives each document its own ObjectId `_id`).
    assert {key for key in keys if not key.endswith(object_ids)} == {"Session.django.db.models.fields.CharField"}
    assert "Attendance.common.fields.ObjectIdField" in keys
    assert "ContentType.django_mongodb_backend.fields.auto.ObjectIdAutoField" in keys


def _operations(rendered: list[dict], migration: str) -> str:
    return "\n".join(next(m["operations"] for m in rendered if m["migration"] == migration))


def test_unique_indexes_are_created(rendered_migrations: list[dict]) -> None:
    users = _operations(rendered_migrations, "accounts.0001_initial")
    # Email uniqueness is a unique index on MongoDB too (the sign-up race is settled by it).
    assert "db.accounts_user.create_indexes([IndexModel({'email': 1}" in users
    assert "unique=True" in users.split("{'email': 1}")[1].split("\n")[0]

    enrollments = _operations(rendered_migrations, "classes.0001_initial")
    assert "IndexModel({'classId': 1, 'studentId': 1}, name='unique_enrollment', unique=True" in enrollments
    # Keys and references are native ObjectIds: the unique index covers documents whose fields have that type.
    assert "'classId': {'$type': 'objectId'}, 'studentId': {'$type': 'objectId'}" in enrollments

    attendance = _operations(rendered_migrations, "live.0001_initial")
    assert (
        "IndexModel({'classId': 1, 'startedAt': 1, 'studentId': 1}, name='one_record_per_session', unique=True"
        in attendance
    )
    assert "IndexModel({'classId': 1, 'studentId': 1, 'startedAt': -1}, name='attendance_latest')" in attendance


# --- With a server ------------------------------------------------------------------------------------


@needs_server
@pytest.mark.django_db(transaction=True)
def test_round_trip_through_the_orm() -> None:
    from bson import ObjectId
    from django.db import IntegrityError, connection
    from django.utils.dateparse import parse_datetime

    from accounts.models import Role, User
    from classes import services as classes
    from classes.models import Enrollment
    from common.errors import NotFound
    from live import commands, selectors
    from live.models import Attendance

    assert connection.vendor == "mongodb"
    db = connection.get_database()

    teacher = User.objects.create_user("T@Example.com ", "secret123", name="Teacher", role=Role.TEACHER)
    student = User.objects.create_user("s@example.com", "secret123", name="Student", role=Role.STUDENT)
    doc = db["accounts_user"].find_one({"_id": ObjectId(student.id)})
    assert doc is not None and isinstance(doc["_id"], ObjectId) and "id" not in doc
    assert doc["email"] == "s@example.com" and doc["role"] == "student"
    assert User.objects.get(pk=student.id).email == "s@example.com"
    assert User.objects.filter(pk="not-an-object-id").first() is None

    # Unique email: a unique index, enforced by the server.
    unique = [idx for idx in db["accounts_user"].index_information().values() if idx["key"] == [("email", 1)]]
    assert unique and unique[0].get("unique")
    with pytest.raises(IntegrityError):
        User.objects.create_user("s@example.com", "other-secret", name="Twin", role=Role.STUDENT)

    klass = classes.create_class(teacher, "Algebra")
    classes.add_student(klass, student.id)
    classes.add_student(klass, student.id)  # twice: still one enrolment
    assert Enrollment.objects.filter(klass=klass).count() == 1
    enrollment = db["enrollments"].find_one({"classId": ObjectId(klass.id)})
    assert isinstance(enrollment["studentId"], ObjectId) and isinstance(enrollment["_id"], ObjectId)
    assert isinstance(db["classes"].find_one({"_id": ObjectId(klass.id)})["teacher_id"], ObjectId)

    detail = classes.class_detail(klass.id, teacher).model_dump(mode="json")  # a join ($lookup)
    assert detail["students"] == [{"_id": student.id, "name": "Student", "email": "s@example.com"}]
    found = selectors.connect_participants([{"userId": teacher.id}, {"userId": student.id}])  # IN (...) on ObjectIds
    assert [(user.id, class_ids) for user, class_ids in found] == [(teacher.id, {klass.id}), (student.id, {klass.id})]

    assert selectors.my_persisted_status(klass.id, student).status is None
    session = commands.start_session(teacher, klass.id)
    commands.mark_attendance(session, student.id, "present", teacher.id)  # a single-document $set
    live_doc = db["attendance_sessions"].find_one({"_id": ObjectId(session.id)})
    assert live_doc["state"] == "live" and isinstance(live_doc["teacherId"], ObjectId)
    assert live_doc["marks"][student.id]["status"] == "present"
    assert selectors.active_session(teacher.id).attendance == {student.id: "present"}
    assert commands.finish_session(session) == {"present": 1, "absent": 0, "late": 0, "excused": 0, "total": 1}
    record = db["attendance"].find_one({"classId": ObjectId(klass.id)})
    assert isinstance(record["studentId"], ObjectId) and record["status"] == "present"
    assert record["sessionId"] == ObjectId(session.id)
    assert record["startedAt"].isoformat(timespec="milliseconds") == session.started_at[:-1]
    assert selectors.my_persisted_status(klass.id, student).model_dump(mode="json") == {
        "classId": klass.id,
        "status": "present",
    }

    # A session is persisted once: a second DONE finds no session; a second record for it is refused by the
    # unique index.
    with pytest.raises(NotFound):
        commands.finish_session(session)
    assert Attendance.objects.filter(klass=klass).count() == 1
    with pytest.raises(IntegrityError):
        Attendance.objects.create(
            session_id=session.id, klass_id=klass.id, student_id=student.id, status="absent",
            started_at=parse_datetime(session.started_at),
        )
    assert Attendance.objects.filter(klass=klass).count() == 1

    later = commands.start_session(teacher, klass.id)
    assert commands.finish_session(later) == {"present": 0, "absent": 1, "late": 0, "excused": 0, "total": 1}
    assert selectors.my_persisted_status(klass.id, student).status == "absent"
