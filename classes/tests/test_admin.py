"""The Django admin for classes."""

import pytest

from tests.support import make_class, make_user

pytestmark = pytest.mark.django_db


def test_admin_class_list(admin_site_client, teacher):
    klass = make_class(teacher, name="Maths 101")
    response = admin_site_client.get("/admin/classes/class/")
    assert response.status_code == 200
    assert b"Maths 101" in response.content and klass.id.encode() in response.content


def test_admin_class_search(admin_site_client, teacher, other_teacher):
    make_class(teacher, name="Maths 101")
    make_class(other_teacher, name="History 202")
    response = admin_site_client.get("/admin/classes/class/", {"q": other_teacher.name})
    assert response.status_code == 200
    assert b"History 202" in response.content and b"Maths 101" not in response.content


def test_admin_class_change_page_lists_enrolments(admin_site_client, teacher, student):
    klass = make_class(teacher, [student, make_user("student")], name="Maths 101")
    response = admin_site_client.get(f"/admin/classes/class/{klass.id}/change/")
    assert response.status_code == 200
    assert b"Maths 101" in response.content and student.id.encode() in response.content
