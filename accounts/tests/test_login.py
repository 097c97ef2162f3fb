"""POST /auth/login, in-process, and the token it issues."""

import time

import jwt
import pytest
from django.conf import settings

from tests.support import (
    BAD_CREDENTIALS,
    BIG_BODY,
    DEEP_BODY,
    INVALID_SCHEMA,
    METHOD_NOT_ALLOWED,
    PASSWORD,
    PAYLOAD_TOO_LARGE,
    assert_error,
    assert_ok,
    post_json,
    post_raw,
)

pytestmark = pytest.mark.django_db


def login(client, email, password=PASSWORD):
    return post_json(client, "/auth/login", {"email": email, "password": password})


@pytest.mark.parametrize("who", ["teacher", "student"])
def test_login_returns_token_with_contract_claims(client, request, who):
    user = request.getfixturevalue(who)
    before = int(time.time())
    data = assert_ok(login(client, user.email))

    assert set(data) == {"token"}
    token = data["token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"])
    assert set(claims) == {"userId", "role", "iat", "exp"}
    assert (claims["userId"], claims["role"]) == (user.id, who)
    assert before - 1 <= claims["iat"] <= int(time.time()) + 1
    assert claims["exp"] - claims["iat"] == settings.JWT_TTL_SECONDS


def test_login_token_is_signed_with_jwt_secret(client, student, settings):
    settings.JWT_SECRET = "another-jwt-secret-long-enough-for-hs256"
    token = assert_ok(login(client, student.email))["token"]
    assert jwt.decode(token, "another-jwt-secret-long-enough-for-hs256", algorithms=["HS256"])["userId"] == student.id
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, settings.SECRET_KEY, algorithms=["HS256"])


def test_login_email_is_trimmed_and_case_insensitive(client, student):
    assert_ok(login(client, f"  {student.email.upper()} "))


def test_login_token_works_on_me(client, student):
    token = assert_ok(login(client, student.email))["token"]
    assert assert_ok(client.get("/auth/me", headers={"Authorization": token}))["_id"] == student.id


def test_login_wrong_password_is_400(client, student):
    assert_error(login(client, student.email, "wrong-password"), 400, BAD_CREDENTIALS)


def test_login_unknown_email_is_400_with_same_message(client, student):
    assert_error(login(client, "nobody@example.com"), 400, BAD_CREDENTIALS)


def test_login_inactive_user_is_400(client, student):
    student.is_active = False
    student.save()
    assert_error(login(client, student.email), 400, BAD_CREDENTIALS)


def test_login_ignores_unknown_fields(client, student):
    response = post_json(client, "/auth/login", {"email": student.email, "password": PASSWORD, "role": "teacher"})
    token = assert_ok(response)["token"]
    assert jwt.decode(token, settings.JWT_SECRET, algorithms=["HS256"])["role"] == "student"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "not-an-email", "password": PASSWORD}, id="bad-email"),
        pytest.param({"email": "a@example.com", "password": ""}, id="empty-password"),
        pytest.param({"email": "a@example.com", "password": 123456}, id="password-int"),
        pytest.param({"email": 5, "password": PASSWORD}, id="email-int"),
        pytest.param({"email": "a@example.com"}, id="no-password"),
        pytest.param({"password": PASSWORD}, id="no-email"),
        pytest.param({}, id="empty-object"),
    ],
)
def test_login_invalid_body_is_400(client, body):
    assert_error(post_json(client, "/auth/login", body), 400, INVALID_SCHEMA)


@pytest.mark.parametrize("raw", [b"", b"nope", b"[]", b'"x"'], ids=["empty", "garbage", "array", "string"])
def test_login_body_not_a_json_object_is_400(client, raw):
    assert_error(post_raw(client, "/auth/login", raw), 400, INVALID_SCHEMA)


def test_login_body_parsed_with_text_plain(client, student):
    raw = f'{{"email": "{student.email}", "password": "{PASSWORD}"}}'
    assert_ok(post_raw(client, "/auth/login", raw, content_type="text/plain"))


def test_login_body_over_1_mib_is_413(client):
    assert_error(post_raw(client, "/auth/login", BIG_BODY), 413, PAYLOAD_TOO_LARGE)


def test_login_deeply_nested_json_is_400(client):
    assert_error(post_raw(client, "/auth/login", DEEP_BODY), 400, INVALID_SCHEMA)


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_login_wrong_method_is_405(client, method):
    assert_error(getattr(client, method)("/auth/login"), 405, METHOD_NOT_ALLOWED)
