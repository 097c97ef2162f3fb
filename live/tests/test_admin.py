"""The Django admin for persisted attendance: sessions with counts and records, read-only."""

import pytest

from live.models import Attendance, AttendanceSession
from tests.support import count_queries, make_class, make_user, make_users, persist_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def persisted(teacher):
    ann = make_user("student", name="Ann <b>Archer</b>")
    bob = make_user("student", name="Bob Baker")
    klass = make_class(teacher, [ann, bob], name="Maths 101")
    persist_session(teacher, klass.id, "2025-03-11T10:00:00.000Z", {ann.id: "present"})
    return klass, ann, bob, AttendanceSession.objects.get(klass=klass)


def test_session_list_shows_counts(admin_site_client, persisted):
    response = admin_site_client.get("/admin/live/attendancesession/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Maths 101" in html
    assert '<td class="field-present">1</td>' in html
    assert '<td class="field-absent">1</td>' in html
    assert '<td class="field-total">2</td>' in html


def test_session_page_lists_records_read_only(admin_site_client, persisted):
    klass, ann, bob, session = persisted
    response = admin_site_client.get(f"/admin/live/attendancesession/{session.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Ann &lt;b&gt;Archer&lt;/b&gt;" in html and "<b>Archer</b>" not in html  # names are escaped
    assert html.index("Ann &lt;b&gt;") < html.index("Bob Baker")
    assert ann.email in html and bob.email in html
    assert 'name="_save"' not in html  # nothing to save


def test_nothing_can_be_added_or_changed(admin_site_client, persisted):
    klass, ann, _, session = persisted
    assert admin_site_client.get("/admin/live/attendancesession/add/").status_code == 403
    assert admin_site_client.get("/admin/live/attendance/add/").status_code == 403
    response = admin_site_client.post(
        f"/admin/live/attendancesession/{session.pk}/change/", {"state": "live", "started_at_0": "2020-01-01"}
    )
    assert response.status_code == 403
    assert AttendanceSession.objects.get(pk=session.pk).state == "persisted"
    record = Attendance.objects.get(klass=klass, student=ann)
    response = admin_site_client.post(f"/admin/live/attendance/{record.pk}/change/", {"status": "absent"})
    assert response.status_code == 403
    assert Attendance.objects.get(pk=record.pk).status == "present"


def test_deleting_a_class_in_the_admin_still_takes_its_sessions(admin_site_client, persisted):
    klass, _, _, session = persisted
    response = admin_site_client.post(f"/admin/classes/class/{klass.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content[:500]
    assert not AttendanceSession.objects.filter(pk=session.pk).exists()


def test_session_list_query_count_does_not_grow_with_sessions(admin_site_client, persisted, teacher):
    def queries():
        return count_queries(lambda: admin_site_client.get("/admin/live/attendancesession/"))

    one = queries()
    students = make_users("student", 5)
    klass = make_class(teacher, students)
    for day in range(12, 20):
        persist_session(teacher, klass.id, f"2025-03-{day}T10:00:00.000Z")
    assert queries() == one
