from django.db import migrations


def link_sessions(apps, schema_editor):
    """Committed sessions become persisted, the rest (a DONE that never committed) expired; each gets its
    class's teacher, and the records of its (class, startedAt) point at it. Records left without a session
    (none are expected: 0002 gave every start one) get an expired one, so that they never count."""
    Attendance = apps.get_model("live", "Attendance")
    AttendanceSession = apps.get_model("live", "AttendanceSession")
    Class = apps.get_model("classes", "Class")
    db = schema_editor.connection.alias
    teacher_of = dict(Class.objects.using(db).values_list("id", "teacher_id"))
    for session in AttendanceSession.objects.using(db).order_by("pk"):
        AttendanceSession.objects.using(db).filter(pk=session.pk).update(
            state="persisted" if session.committed else "expired",
            teacher_id=teacher_of[session.klass_id],
            updated_at=session.ended_at or session.started_at,
        )
        Attendance.objects.using(db).filter(klass_id=session.klass_id, started_at=session.started_at).update(
            session_id=session.pk
        )
    orphans = set(Attendance.objects.using(db).filter(session__isnull=True).values_list("klass_id", "started_at"))
    for klass_id, started_at in orphans:
        session = AttendanceSession.objects.using(db).create(
            klass_id=klass_id,
            teacher_id=teacher_of[klass_id],
            started_at=started_at,
            updated_at=started_at,
            state="expired",
            marks={},
        )
        Attendance.objects.using(db).filter(klass_id=klass_id, started_at=started_at).update(session_id=session.pk)


def unlink_sessions(apps, schema_editor):
    AttendanceSession = apps.get_model("live", "AttendanceSession")
    db = schema_editor.connection.alias
    AttendanceSession.objects.using(db).update(committed=False)
    AttendanceSession.objects.using(db).filter(state="persisted").update(committed=True)


class Migration(migrations.Migration):

    dependencies = [
        ("classes", "0001_initial"),
        ("live", "0004_durable_sessions_fields"),
    ]

    operations = [
        migrations.RunPython(link_sessions, unlink_sessions, elidable=True),
    ]
