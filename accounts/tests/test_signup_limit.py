"""Sign-ups per client address (SIGNUPS_PER_IP), in-process; over the wire: test_wire_limits.py."""

import secrets

import pytest

from accounts.models import User
from apidocs.openapi import build_openapi
from live.tests.services_available import redis_url, require_redis
from tests.support import (
    EMAIL_EXISTS,
    PASSWORD,
    TOO_MANY_REQUESTS,
    assert_error,
    assert_ok,
    unique_email,
)

pytestmark = pytest.mark.django_db


def signup(client, email=None, ip="127.0.0.1"):
    body = {"name": "Rahul", "email": email or unique_email("rahul"), "password": PASSWORD, "role": "student"}
    return client.post("/auth/signup", body, content_type="application/json", REMOTE_ADDR=ip)


def assert_refused(response) -> int:
    """429 in the envelope, Retry-After whole seconds within an hour's window."""
    assert_error(response, 429, TOO_MANY_REQUESTS)
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 900, retry_after
    return int(retry_after)


def test_the_signup_over_the_limit_is_429_before_any_hashing_and_another_address_still_signs_up(
    client, settings, bcrypt_computations
):
    settings.SIGNUPS_PER_IP = 3
    taken = unique_email("taken")
    assert_ok(signup(client, taken), 201)
    assert_error(signup(client, taken), 400, EMAIL_EXISTS)  # a refused sign-up counts too
    assert_ok(signup(client), 201)
    assert len(bcrypt_computations) == 2
    users = User.objects.count()
    for _ in range(3):  # refusals are not counted, and hash nothing
        assert_refused(signup(client))
    assert len(bcrypt_computations) == 2 and User.objects.count() == users
    assert_ok(signup(client, ip="198.51.100.7"), 201)  # another address: its own count


def test_the_default_is_100_an_hour(client):
    for _ in range(100):
        assert_ok(signup(client, ip="203.0.113.9"), 201)
    assert_refused(signup(client, ip="203.0.113.9"))


def test_a_signup_limit_of_zero_is_off(client, settings):
    settings.SIGNUPS_PER_IP = 0
    for _ in range(105):
        assert_ok(signup(client), 201)


def test_the_openapi_document_declares_signups_429_with_retry_after():
    document = build_openapi()
    too_many = document["paths"]["/auth/signup"]["post"]["responses"]["429"]
    assert too_many["headers"] == {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    assert document["components"]["headers"]["Retry-After"]["schema"]["maximum"] == 900


def test_signups_are_counted_in_the_shared_limits_cache_with_redis(client, settings):
    """With REDIS_URL, the limits cache is Redis (attendance_site/settings.py): sign-ups count there, as failed
    logins do, so every worker sees them."""
    import redis

    url = redis_url(12)
    require_redis(url)
    prefix = f"test-signups-{secrets.token_hex(4)}"
    settings.CACHES = {
        **settings.CACHES,
        settings.LIMITS_CACHE: {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                                "KEY_PREFIX": prefix},
    }
    settings.SIGNUPS_PER_IP = 2
    with redis.Redis.from_url(url, socket_timeout=5) as shared:
        try:
            for _ in range(2):
                assert_ok(signup(client), 201)
            assert_refused(signup(client))
            keys = list(shared.scan_iter(match=f"{prefix}:*", count=1000))
            assert len(keys) == 1 and int(shared.get(keys[0])) == 2
            assert 0 < shared.ttl(keys[0]) <= 3600 + 60
        finally:
            for key in shared.scan_iter(match=f"{prefix}:*", count=1000):  # ours only: never a flush
                shared.delete(key)
