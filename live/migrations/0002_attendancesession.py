import django.db.models.deletion
from django.db import migrations, models

import common.fields


def commit_existing_sessions(apps, schema_editor):
    """Sessions persisted before this migration are complete (each was written in one transaction): give each
    its committed AttendanceSession, or its records would stop counting."""
    Attendance = apps.get_model("live", "Attendance")
    AttendanceSession = apps.get_model("live", "AttendanceSession")
    db = schema_editor.connection.alias
    starts = Attendance.objects.using(db).order_by().values_list("klass_id", "started_at").distinct()
    AttendanceSession.objects.using(db).bulk_create(
        [AttendanceSession(klass_id=klass_id, started_at=started_at, committed=True) for klass_id, started_at in starts],
        batch_size=1000,
    )


class Migration(migrations.Migration):

    dependencies = [
        ("classes", "0001_initial"),
        ("live", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="AttendanceSession",
            fields=[
                ("id", common.fields.ObjectIdField(db_column="_id", default=common.fields.new_object_id, editable=False, primary_key=True, serialize=False)),
                ("started_at", models.DateTimeField(db_column="startedAt")),
                ("committed", models.BooleanField(default=False)),
                ("klass", models.ForeignKey(db_column="classId", on_delete=django.db.models.deletion.CASCADE, related_name="sessions", to="classes.class")),
            ],
            options={
                "db_table": "attendance_sessions",
                "ordering": ["-started_at", "id"],
                "constraints": [models.UniqueConstraint(fields=("klass", "started_at"), name="one_session_per_start")],
            },
        ),
        migrations.RunPython(commit_existing_sessions, migrations.RunPython.noop, elidable=True),
    ]
