import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    """After 0005 every session has its teacher and every record its session: required from now on; the
    `committed` flag is the state now, and records are unique per (session, student)."""

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("live", "0005_durable_sessions_data"),
    ]

    operations = [
        migrations.AlterField(
            model_name="attendancesession",
            name="teacher",
            field=models.ForeignKey(db_column="teacherId", on_delete=django.db.models.deletion.CASCADE, related_name="attendance_sessions", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name="attendancesession",
            name="updated_at",
            field=models.DateTimeField(db_column="updatedAt"),
        ),
        migrations.AlterField(
            model_name="attendance",
            name="session",
            field=models.ForeignKey(db_column="sessionId", on_delete=django.db.models.deletion.CASCADE, related_name="records", to="live.attendancesession"),
        ),
        migrations.RemoveConstraint(
            model_name="attendance",
            name="one_record_per_session",
        ),
        migrations.AddConstraint(
            model_name="attendance",
            constraint=models.UniqueConstraint(fields=("session", "student"), name="one_record_per_session_id"),
        ),
        migrations.RemoveField(
            model_name="attendancesession",
            name="committed",
        ),
        migrations.AddIndex(
            model_name="attendancesession",
            index=models.Index(fields=["teacher", "state"], name="session_of_teacher"),
        ),
        migrations.AddIndex(
            model_name="attendancesession",
            index=models.Index(fields=["klass", "state"], name="sessions_of_class"),
        ),
    ]
