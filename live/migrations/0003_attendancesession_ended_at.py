from django.db import migrations, models


def end_existing_sessions(apps, schema_editor):
    """Sessions committed before endedAt existed never recorded when they ended: give them their start time,
    the latest moment known to be no later than their end, so that every persisted session has an endedAt
    (>= startedAt). Sessions still being persisted keep null; their commit sets it."""
    AttendanceSession = apps.get_model("live", "AttendanceSession")
    db = schema_editor.connection.alias
    AttendanceSession.objects.using(db).filter(committed=True, ended_at__isnull=True).update(
        ended_at=models.F("started_at")
    )


class Migration(migrations.Migration):

    dependencies = [
        ("live", "0002_attendancesession"),
    ]

    operations = [
        migrations.AddField(
            model_name="attendancesession",
            name="ended_at",
            field=models.DateTimeField(blank=True, db_column="endedAt", null=True),
        ),
        migrations.RunPython(end_existing_sessions, migrations.RunPython.noop, elidable=True),
    ]
