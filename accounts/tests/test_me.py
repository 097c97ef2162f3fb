"""GET /auth/me and how every protected route reads the Authorization header, in-process and over the wire (the
`site` fixture)."""

import jwt
import pytest
from bson import ObjectId
from django.conf import settings

from tests.support import (
    METHOD_NOT_ALLOWED,
    MISSING_ID,
    UNAUTHORIZED,
    assert_error,
    assert_ok,
    assert_public_user,
    forge_token,
    token_for,
)

# The in-process tests need the database; the `site` scenarios run both ways.
pytestmark = pytest.mark.django_db


def me(client, authorization=None):
    return client.get("/auth/me", headers={"Authorization": authorization} if authorization is not None else {})


@pytest.mark.parametrize("who", ["teacher", "student"])
def test_me_returns_the_user_without_password(site, who):
    user = site.person(who)
    data = assert_ok(site.get("/auth/me", site.token(user)))
    assert_public_user(data, name=user.name, email=user.email, role=who)
    assert data["_id"] == user.id


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_me_accepts_bearer_scheme(site, scheme):
    student = site.person("student")
    assert assert_ok(site.get("/auth/me", f"{scheme} {site.token(student)}"))["_id"] == student.id


def test_me_accepts_a_forged_but_correctly_signed_token(client, student):
    """The check is the signature and claims, not where the token came from."""
    token = forge_token(settings.JWT_SECRET, user_id=student.id)
    assert assert_ok(me(client, token))["_id"] == student.id


def test_me_without_header_is_401(site):
    assert_error(site.get("/auth/me"), 401, UNAUTHORIZED)


@pytest.mark.parametrize(
    "authorization", ["", "garbage", "Bearer", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "a.b.c", "Token x y"]
)
def test_me_with_garbage_header_is_401(site, authorization):
    assert_error(site.get("/auth/me", authorization), 401, UNAUTHORIZED)


@pytest.mark.parametrize("authorization", ["   ", "Bearer "])
def test_me_with_blank_or_trailing_space_header_is_401(client, authorization):
    """In-process only: an HTTP client strips (or refuses) a header value's surrounding spaces."""
    assert_error(me(client, authorization), 401, UNAUTHORIZED)


def test_me_with_other_scheme_around_valid_token_is_401(client, student):
    assert_error(me(client, f"Token {token_for(student)}"), 401, UNAUTHORIZED)
    assert_error(me(client, f"Bearer {token_for(student)} extra"), 401, UNAUTHORIZED)


def test_me_with_expired_token_is_401(site):
    token = forge_token(site.jwt_secret, user_id=site.person("student").id, age=7200, ttl=3600)
    assert_error(site.get("/auth/me", token), 401, UNAUTHORIZED)


def test_me_with_wrong_secret_is_401(site):
    token = forge_token("not-the-secret-but-long-enough-for-hs256", user_id=site.person("student").id)
    assert_error(site.get("/auth/me", token), 401, UNAUTHORIZED)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_me_with_other_algorithm_is_401(client, student):
    token = jwt.encode(
        {"userId": student.id, "role": "student", "iat": 0, "exp": 4102444800}, settings.JWT_SECRET, "HS512"
    )
    assert_error(me(client, token), 401, UNAUTHORIZED)


def test_me_with_unsigned_token_is_401(client, student):
    token = jwt.encode({"userId": student.id, "role": "student", "iat": 0, "exp": 4102444800}, None, "none")
    assert_error(me(client, token), 401, UNAUTHORIZED)


@pytest.mark.parametrize("claim", ["userId", "role", "iat", "exp"])
def test_me_with_token_lacking_a_claim_is_401(client, student, claim):
    token = forge_token(settings.JWT_SECRET, user_id=student.id, **{claim: None})
    assert_error(me(client, token), 401, UNAUTHORIZED)


@pytest.mark.parametrize("user_id", [MISSING_ID, "not-an-id", 12345, MISSING_ID.upper(), str(ObjectId())])
def test_me_with_token_naming_no_user_is_401(site, user_id):
    token = forge_token(site.jwt_secret, user_id=user_id)
    assert_error(site.get("/auth/me", token), 401, UNAUTHORIZED)


def test_me_token_of_deleted_user_is_401(site):
    student = site.person("student")
    token = site.token(student)
    assert_ok(site.get("/auth/me", token))
    site.delete_user(student)
    assert_error(site.get("/auth/me", token), 401, UNAUTHORIZED)


def test_me_token_of_deactivated_user_is_401(client, student):
    token = token_for(student)
    student.is_active = False
    student.save()
    assert_error(me(client, token), 401, UNAUTHORIZED)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_me_wrong_method_is_405_before_auth(site, method):
    assert_error(site.request(method, "/auth/me"), 405, METHOD_NOT_ALLOWED)
