"""POST /auth/login and the token it issues, in-process and over the wire (the `site` fixture); the failed-login
limits in-process (over the wire: test_wire_limits.py)."""

import time
from types import SimpleNamespace

import jwt
import pytest
from django.conf import settings

from common import limits
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
    assert_too_many_requests,
    make_user,
    post_json,
    post_raw,
    unique_email,
)

# The in-process tests need the database; the `site` scenarios run both ways.
pytestmark = pytest.mark.django_db



def login(client, email, password=PASSWORD, ip="127.0.0.1"):
    return client.post(
        "/auth/login", {"email": email, "password": password}, content_type="application/json", REMOTE_ADDR=ip
    )


def site_login(site, email, password=PASSWORD):
    return site.post("/auth/login", {"email": email, "password": password})


@pytest.mark.parametrize("who", ["teacher", "student"])
def test_login_returns_token_with_contract_claims(site, who):
    user = site.person(who)
    before = int(time.time())
    data = assert_ok(site_login(site, user.email))

    assert set(data) == {"token"}
    token = data["token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, site.jwt_secret, algorithms=["HS256"])
    assert set(claims) == {"userId", "role", "iat", "exp"}
    assert (claims["userId"], claims["role"]) == (user.id, who)
    assert before - 1 <= claims["iat"] <= int(time.time()) + 1
    assert claims["exp"] - claims["iat"] == site.jwt_ttl


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


def test_login_wrong_password_is_400(site):
    assert_error(site_login(site, site.person("student").email, "wrong-password"), 400, BAD_CREDENTIALS)


def test_login_unknown_email_is_400_with_same_message(site):
    assert_error(site_login(site, unique_email("nobody")), 400, BAD_CREDENTIALS)


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
def test_login_invalid_body_is_400(site, body):
    assert_error(site.post("/auth/login", body), 400, INVALID_SCHEMA)


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


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_login_wrong_method_is_405(site, method):
    assert_error(site.request(method, "/auth/login"), 405, METHOD_NOT_ALLOWED)


# --- the failed-login limits (docs/production.md "Limits against abuse"; over the wire: test_wire_limits.py) -------
def test_the_6th_wrong_password_is_429_before_any_hashing_and_another_email_still_logs_in(
    client, student, bcrypt_computations
):
    for _ in range(5):
        assert_error(login(client, student.email, "wrong-password"), 400, BAD_CREDENTIALS)
    assert len(bcrypt_computations) == 5
    assert_too_many_requests(login(client, student.email, "wrong-password"))
    assert_too_many_requests(login(client, student.email))  # the right password too: it is not checked
    assert len(bcrypt_computations) == 5
    other = make_user("teacher")
    assert_ok(login(client, other.email))
    assert_ok(login(client, student.email, ip="198.51.100.1"))  # the same email from another address


def test_unknown_emails_count_too_and_email_case_does_not_matter(client):
    spellings = ["nobody@example.com", "NOBODY@example.com", " Nobody@Example.com ", "nobody@EXAMPLE.com"]
    for email in [*spellings, "noBody@example.com"]:
        assert_error(login(client, email), 400, BAD_CREDENTIALS)
    assert_too_many_requests(login(client, "nobody@example.COM"))


def test_the_failures_of_one_address_are_limited_across_emails(client, settings, student):
    settings.LOGIN_FAILURES_PER_IP = 8
    for i in range(8):
        assert_error(login(client, f"nobody{i}@example.com", ip="203.0.113.5"), 400, BAD_CREDENTIALS)
    assert_too_many_requests(login(client, student.email, ip="203.0.113.5"))
    assert_ok(login(client, student.email, ip="203.0.113.6"))


def test_successes_schema_errors_and_429s_do_not_count(client, settings, student, monkeypatch):
    settings.LOGIN_FAILURES_PER_IP = 7
    # One instant for the whole count: 15-minute windows, and the test must not straddle a boundary (on a slow
    # database it takes seconds, and one run in a hundred did).
    now = time.time()
    monkeypatch.setattr(limits, "time", SimpleNamespace(time=lambda: now))
    for _ in range(10):
        assert_ok(login(client, student.email))
        assert_error(post_json(client, "/auth/login", {"email": student.email, "password": ""}), 400, INVALID_SCHEMA)
    for _ in range(5):
        assert_error(login(client, student.email, "wrong-password"), 400, BAD_CREDENTIALS)
    for _ in range(10):
        assert_too_many_requests(login(client, student.email, "wrong-password"))
    # The address has 5 failures, not 15: two more are still answered (the 8th is not).
    assert_error(login(client, "nobody@example.com"), 400, BAD_CREDENTIALS)
    assert_error(login(client, "nobody@example.com"), 400, BAD_CREDENTIALS)
    assert_too_many_requests(login(client, "nobody@example.com"))


def test_login_failure_limits_of_zero_are_off(client, settings, student):
    settings.LOGIN_FAILURES_PER_EMAIL = settings.LOGIN_FAILURES_PER_IP = 0
    for _ in range(60):
        assert_error(login(client, student.email, "wrong-password"), 400, BAD_CREDENTIALS)
    assert_ok(login(client, student.email))


def test_a_failing_limits_cache_lets_logins_through(client, settings, student):
    settings.CACHES = {
        **settings.CACHES,
        settings.LIMITS_CACHE: {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.5},
        },
    }
    for _ in range(7):
        assert_error(login(client, student.email, "wrong-password"), 400, BAD_CREDENTIALS)
    assert_ok(login(client, student.email))
