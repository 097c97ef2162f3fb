"""POST /auth/signup, in-process and over the wire (the `site` fixture); what only the database shows (the
stored user, the hash), in-process."""

import json

import pytest

from accounts.models import User
from tests.support import (
    BIG_BODY,
    DEEP_BODY,
    EMAIL_EXISTS,
    INVALID_SCHEMA,
    METHOD_NOT_ALLOWED,
    OBJECT_ID,
    PASSWORD,
    PAYLOAD_TOO_LARGE,
    assert_error,
    assert_ok,
    assert_public_user,
    post_json,
    unique_email,
)

# The in-process tests need the database; the `site` scenarios run both ways.
pytestmark = pytest.mark.django_db

VALID = {"name": "Rahul", "email": "rahul@example.com", "password": PASSWORD, "role": "student"}


def signup(client, **changes):
    return post_json(client, "/auth/signup", {**VALID, **changes})


def site_signup(site, **changes):
    """A signup on `site` with an email no other test uses (the wire server is shared)."""
    return site.post("/auth/signup", {**VALID, "email": unique_email("rahul"), **changes})


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_signup_creates_user_and_returns_it_without_password(site, role):
    email = unique_email("rahul")
    data = assert_ok(site_signup(site, role=role, email=email), 201)

    assert_public_user(data, name="Rahul", email=email, role=role)
    if site.mode == "local":
        user = User.objects.get(pk=data["_id"])
        assert (user.name, user.email, user.role) == ("Rahul", email, role)
        assert user.password != PASSWORD and user.check_password(PASSWORD)


def test_signup_ids_are_distinct_object_ids(client):
    first = assert_ok(signup(client, email="one@example.com"), 201)["_id"]
    second = assert_ok(signup(client, email="two@example.com"), 201)["_id"]
    assert OBJECT_ID.match(first) and OBJECT_ID.match(second) and first != second


def test_signup_trims_and_lowercases_email_then_login_with_plain_form(site):
    email = unique_email("case")
    data = assert_ok(site_signup(site, email=f"  {email.upper()} "), 201)
    assert data["email"] == email
    if site.mode == "local":
        assert User.objects.get(pk=data["_id"]).email == email

    token = assert_ok(site.post("/auth/login", {"email": email, "password": PASSWORD}))["token"]
    assert isinstance(token, str) and token


def test_signup_trims_name(client):
    assert assert_ok(signup(client, name="  Rahul  "), 201)["name"] == "Rahul"


def test_signup_keeps_password_as_typed(client):
    """Passwords are not trimmed: the spaces are part of it."""
    assert_ok(signup(client, password="  spaced  "), 201)
    assert_ok(post_json(client, "/auth/login", {"email": VALID["email"], "password": "  spaced  "}))
    response = post_json(client, "/auth/login", {"email": VALID["email"], "password": "spaced"})
    assert response.status_code == 400


def test_signup_duplicate_email_is_400(site):
    email = unique_email("dup")
    assert_ok(site_signup(site, email=email), 201)
    assert_error(site_signup(site, email=email, name="Someone else"), 400, EMAIL_EXISTS)
    if site.mode == "local":
        assert User.objects.count() == 1


def test_signup_duplicate_email_in_other_case_is_400(site):
    email = unique_email("dup")
    assert_ok(site_signup(site, email=email), 201)
    assert_error(site_signup(site, email=f" {email.upper()} "), 400, EMAIL_EXISTS)
    assert_error(site_signup(site, email=email.title()), 400, EMAIL_EXISTS)
    if site.mode == "local":
        assert User.objects.count() == 1


def test_signup_ignores_unknown_fields(site):
    extra = {"isAdmin": True, "_id": "5f0c0ffee0ddba11deadbeef", "is_staff": True, "password2": "x"}
    data = assert_ok(site_signup(site, **extra), 201)
    assert data["_id"] != "5f0c0ffee0ddba11deadbeef"
    assert not {"isAdmin", "is_staff", "password", "password2"} & set(data), data
    if site.mode == "local":
        user = User.objects.get(pk=data["_id"])
        assert not user.is_staff and not user.is_superuser


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"name": ""}, id="empty-name"),
        pytest.param({"name": "   "}, id="blank-name"),
        pytest.param({"name": 5}, id="name-int"),
        pytest.param({"name": None}, id="name-null"),
        pytest.param({"email": "not-an-email"}, id="bad-email"),
        pytest.param({"email": ""}, id="empty-email"),
        pytest.param({"email": "a b@example.com"}, id="email-inner-space"),
        pytest.param({"email": ["a@b.com"]}, id="email-list"),
        pytest.param({"password": "12345"}, id="password-5-chars"),
        pytest.param({"password": 123456}, id="password-int"),
        pytest.param({"password": ""}, id="password-empty"),
        pytest.param({"role": "admin"}, id="bad-role"),
        pytest.param({"role": "Teacher"}, id="role-wrong-case"),
        pytest.param({"role": None}, id="role-null"),
        pytest.param({"role": ["student"]}, id="role-list"),
    ],
)
def test_signup_invalid_field_is_400(site, changes):
    assert_error(site_signup(site, **changes), 400, INVALID_SCHEMA)
    if site.mode == "local":
        assert not User.objects.exists()


@pytest.mark.parametrize("missing", ["name", "email", "password", "role"])
def test_signup_missing_field_is_400(client, missing):
    body = {key: value for key, value in VALID.items() if key != missing}
    assert_error(post_json(client, "/auth/signup", body), 400, INVALID_SCHEMA)


def test_signup_name_with_nul_character_is_400(client):
    assert_error(signup(client, name="Ra\u0000hul"), 400, INVALID_SCHEMA)


def test_signup_name_of_200_chars_is_accepted_and_201_is_400(client):
    assert assert_ok(signup(client, name="n" * 200), 201)["name"] == "n" * 200
    assert_error(signup(client, email="other@example.com", name="n" * 201), 400, INVALID_SCHEMA)


def test_signup_password_of_six_chars_is_enough(client):
    assert_ok(signup(client, password="123456"), 201)


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"{", b"[]", b'[{"name": "x"}]', b'"a string"', b"null", b"42", b"true", b"\xff\xfe"],
    ids=["empty", "garbage", "truncated", "empty-array", "array", "string", "null", "number", "bool", "not-utf8"],
)
def test_signup_body_not_a_json_object_is_400(site, raw):
    assert_error(site.post("/auth/signup", raw=raw), 400, INVALID_SCHEMA)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_signup_body_parsed_whatever_content_type(site, content_type):
    raw = json.dumps({**VALID, "email": unique_email("plain")})
    assert_ok(site.post("/auth/signup", raw=raw, content_type=content_type), 201)


def test_signup_body_over_1_mib_is_413(site):
    assert_error(site.post("/auth/signup", raw=BIG_BODY), 413, PAYLOAD_TOO_LARGE)


def test_signup_deeply_nested_json_is_400(site):
    assert_error(site.post("/auth/signup", raw=DEEP_BODY), 400, INVALID_SCHEMA)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_signup_wrong_method_is_405(site, method):
    assert_error(site.request(method, "/auth/signup"), 405, METHOD_NOT_ALLOWED)
