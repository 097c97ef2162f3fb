"""The Django admin for users."""

import pytest

from accounts.models import User
from tests.support import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def test_superuser_is_a_staff_teacher_with_hashed_password(superuser):
    assert (superuser.is_staff, superuser.is_superuser, superuser.role) == (True, True, "teacher")
    assert superuser.password != PASSWORD and superuser.check_password(PASSWORD)
    assert superuser.has_perm("accounts.change_user") and superuser.has_module_perms("accounts")


def test_admin_needs_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_plain_user_cannot_use_admin(client, teacher):
    client.force_login(teacher)
    assert client.get("/admin/accounts/user/").status_code == 302
    assert not teacher.has_perm("accounts.change_user")


def test_admin_login_page_renders(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200 and b"<form" in response.content


def test_admin_index(admin_site_client):
    response = admin_site_client.get("/admin/")
    assert response.status_code == 200
    assert b"/admin/accounts/user/" in response.content and b"/admin/classes/class/" in response.content


def test_admin_user_search(admin_site_client, student):
    other = make_user("student", name="Unrelated Person")
    response = admin_site_client.get("/admin/accounts/user/", {"q": student.name})
    assert response.status_code == 200
    assert student.email.encode() in response.content
    assert other.email.encode() not in response.content


def test_admin_user_filter_by_role(admin_site_client, teacher, student):
    response = admin_site_client.get("/admin/accounts/user/", {"role__exact": "student"})
    assert response.status_code == 200
    assert student.email.encode() in response.content
    assert teacher.email.encode() not in response.content


def test_admin_user_change_page(admin_site_client, student):
    response = admin_site_client.get(f"/admin/accounts/user/{student.id}/change/")
    assert response.status_code == 200
    assert student.email.encode() in response.content
    assert student.password.encode() not in response.content


def change_form(user, **changes):
    data = {"name": user.name, "email": user.email, "role": user.role, "password": "", "is_active": "on"}
    data.update(changes)
    return data


def test_admin_change_with_empty_password_keeps_it(admin_site_client, student):
    response = admin_site_client.post(f"/admin/accounts/user/{student.id}/change/", change_form(student, name="New"))
    assert response.status_code == 302, response.content
    student.refresh_from_db()
    assert student.name == "New" and student.check_password(PASSWORD)


def test_admin_change_with_password_sets_it(admin_site_client, student):
    response = admin_site_client.post(
        f"/admin/accounts/user/{student.id}/change/", change_form(student, password="brand-new-pw")
    )
    assert response.status_code == 302, response.content
    student.refresh_from_db()
    assert student.check_password("brand-new-pw") and not student.check_password(PASSWORD)


def test_admin_add_user_without_password_gets_unusable_one(admin_site_client):
    form = {"name": "Added", "email": "added@example.com", "role": "student", "password": "", "is_active": "on"}
    response = admin_site_client.post("/admin/accounts/user/add/", form)
    assert response.status_code == 302, response.content
    assert not User.objects.get(email="added@example.com").has_usable_password()
