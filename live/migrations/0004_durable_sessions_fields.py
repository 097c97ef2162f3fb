import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    """The live session becomes a record (fields nullable here; 0005 fills them, 0006 makes them required)."""

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("live", "0003_attendancesession_ended_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="attendancesession",
            name="teacher",
            field=models.ForeignKey(db_column="teacherId", null=True, on_delete=django.db.models.deletion.CASCADE, related_name="attendance_sessions", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name="attendancesession",
            name="state",
            field=models.CharField(choices=[("live", "Live"), ("persisting", "Persisting"), ("persisted", "Persisted"), ("replaced", "Replaced"), ("expired", "Expired")], default="live", max_length=10),
        ),
        migrations.AddField(
            model_name="attendancesession",
            name="marks",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="attendancesession",
            name="updated_at",
            field=models.DateTimeField(db_column="updatedAt", null=True),
        ),
        migrations.AddField(
            model_name="attendancesession",
            name="claim",
            field=models.CharField(blank=True, max_length=32, null=True),
        ),
        migrations.AddField(
            model_name="attendancesession",
            name="claim_until",
            field=models.DateTimeField(blank=True, db_column="claimUntil", null=True),
        ),
        migrations.AddField(
            model_name="attendance",
            name="session",
            field=models.ForeignKey(db_column="sessionId", null=True, on_delete=django.db.models.deletion.CASCADE, related_name="records", to="live.attendancesession"),
        ),
    ]
