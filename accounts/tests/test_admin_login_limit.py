"""/admin/login/ shares /auth/login's failed-login limits (the same counters), in-process; over the wire:
test_wire_limits.py."""

import pytest

from tests.support import (
    BAD_CREDENTIALS,
    PASSWORD,
    TOO_MANY_REQUESTS,
    assert_error,
    assert_ok,
    assert_too_many_requests,
    make_user,
    post_json,
)

pytestmark = pytest.mark.django_db

REFUSED_BY_DJANGO = b"Please enter the correct email and password for a staff account"


def admin_login(client, email, password=PASSWORD, ip="127.0.0.1"):
    data = {"username": email, "password": password, "next": "/admin/"}
    return client.post("/admin/login/", data, REMOTE_ADDR=ip)


def api_login(client, email, password=PASSWORD, ip="127.0.0.1"):
    return client.post(
        "/auth/login", {"email": email, "password": password}, content_type="application/json", REMOTE_ADDR=ip
    )


def assert_wrong_password(response):
    assert response.status_code == 200 and REFUSED_BY_DJANGO in response.content


def assert_logged_in(response, client):
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def assert_refused(response, client):
    """The form again, with the limits' error and a 429 with Retry-After; nobody logged in."""
    assert response.status_code == 429 and b"<form" in response.content
    assert TOO_MANY_REQUESTS.encode() in response.content and REFUSED_BY_DJANGO not in response.content
    assert response["Retry-After"].isdigit() and 1 <= int(response["Retry-After"]) <= 900
    assert client.get("/admin/").status_code == 302


def test_after_5_wrong_passwords_the_right_one_is_refused_without_being_checked(
    client, superuser, bcrypt_computations
):
    for _ in range(5):
        assert_wrong_password(admin_login(client, superuser.email, "wrong-password"))
    assert len(bcrypt_computations) == 5
    assert_refused(admin_login(client, superuser.email), client)
    assert_refused(admin_login(client, superuser.email.upper(), "wrong-password"), client)
    assert len(bcrypt_computations) == 5
    # /auth/login counts the same failures.
    assert_too_many_requests(api_login(client, superuser.email))
    # Another address has its own count.
    assert_logged_in(admin_login(client, superuser.email, ip="198.51.100.3"), client)


def test_below_the_limit_the_right_password_logs_in(client, superuser):
    for _ in range(4):
        assert_wrong_password(admin_login(client, superuser.email, "wrong-password"))
    assert_logged_in(admin_login(client, superuser.email), client)


def test_failures_through_auth_login_count_for_the_admin_too(client, superuser):
    for _ in range(3):
        assert_error(api_login(client, superuser.email, "wrong-password"), 400, BAD_CREDENTIALS)
    for _ in range(2):
        assert_wrong_password(admin_login(client, superuser.email, "wrong-password"))
    assert_refused(admin_login(client, superuser.email), client)


def test_the_admin_counts_against_the_failures_per_address(client, settings, superuser):
    settings.LOGIN_FAILURES_PER_IP = 4
    for i in range(4):
        assert_wrong_password(admin_login(client, f"nobody{i}@example.com", ip="203.0.113.8"))
    assert_refused(admin_login(client, superuser.email, ip="203.0.113.8"), client)
    assert_too_many_requests(api_login(client, superuser.email, ip="203.0.113.8"))


def test_a_right_password_without_staff_access_and_an_empty_form_do_not_count(client, settings):
    settings.LOGIN_FAILURES_PER_EMAIL = 1
    teacher = make_user("teacher")
    for _ in range(3):
        assert_wrong_password(admin_login(client, teacher.email))  # not staff: refused by Django, not counted
        assert admin_login(client, teacher.email, "").status_code == 200  # a required field is missing
    assert_ok(post_json(client, "/auth/login", {"email": teacher.email, "password": PASSWORD}))


def test_failed_login_limits_of_zero_are_off_for_the_admin(client, settings, superuser):
    settings.LOGIN_FAILURES_PER_EMAIL = settings.LOGIN_FAILURES_PER_IP = 0
    for _ in range(30):
        assert_wrong_password(admin_login(client, superuser.email, "wrong-password"))
    assert_logged_in(admin_login(client, superuser.email), client)
