"""Settings read from the environment (docs/configuration.md), checked in fresh interpreters."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = "import django; django.setup()"
SHOW = SETUP + (
    "; from django.conf import settings as s; import json; "
    "print(json.dumps({'DEBUG': s.DEBUG, 'SECRET_KEY': s.SECRET_KEY, 'JWT_SECRET': s.JWT_SECRET, "
    "'ALLOWED_HOSTS': s.ALLOWED_HOSTS, 'JWT_TTL_SECONDS': s.JWT_TTL_SECONDS, 'BCRYPT_ROUNDS': s.BCRYPT_ROUNDS}))"
)
# Variables whose values in the test run's environment would change what these tests look at.
CONTROLLED = ["DEBUG", "SECRET_KEY", "JWT_SECRET", "ALLOWED_HOSTS", "JWT_TTL_SECONDS", "BCRYPT_ROUNDS",
              "LOGIN_FAILURES_PER_EMAIL", "LOGIN_FAILURES_PER_IP", "WS_RATE_BURST", "WS_RATE_PER_SECOND",
              "WS_MAX_SOCKETS_PER_USER", "PROXY_HEADERS", "REDIS_URL", "REDIS_KEY_PREFIX"]


def run_python(code, **env_changes):
    env = {key: value for key, value in os.environ.items() if key not in CONTROLLED}
    env["DJANGO_SETTINGS_MODULE"] = "attendance_site.settings"
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def show(**env_changes):
    result = run_python(SHOW, **env_changes)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("debug", [None, "0", "false"], ids=["unset", "0", "false"])
def test_refuses_default_secret_with_debug_off(debug):
    result = run_python(SETUP, **({"DEBUG": debug} if debug is not None else {}))
    assert result.returncode != 0
    assert "Refusing to start" in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_starts_with_debug_on_and_default_secret():
    values = show(DEBUG="1")
    assert values["DEBUG"] is True
    assert values["SECRET_KEY"] and values["JWT_SECRET"] == values["SECRET_KEY"]
    assert values["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "*"]


def test_starts_with_debug_off_and_custom_secret():
    values = show(DEBUG="0", SECRET_KEY="a-custom-production-secret-0123456789")
    assert values["DEBUG"] is False
    assert values["SECRET_KEY"] == "a-custom-production-secret-0123456789"
    assert values["JWT_SECRET"] == "a-custom-production-secret-0123456789"  # defaults to SECRET_KEY
    assert values["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1"]
    assert (values["JWT_TTL_SECONDS"], values["BCRYPT_ROUNDS"]) == (86400, 12)


def test_reads_jwt_and_host_settings_from_environment():
    values = show(
        SECRET_KEY="a-custom-production-secret-0123456789",
        JWT_SECRET="a-separate-jwt-secret-0123456789abcdef",
        ALLOWED_HOSTS="api.example.com,example.com",
        JWT_TTL_SECONDS="60",
        BCRYPT_ROUNDS="5",
    )
    assert values["JWT_SECRET"] == "a-separate-jwt-secret-0123456789abcdef"
    assert values["ALLOWED_HOSTS"] == ["api.example.com", "example.com"]
    assert (values["JWT_TTL_SECONDS"], values["BCRYPT_ROUNDS"]) == (60, 5)


LIMITS = SETUP + (
    "; from django.conf import settings as s; import json; "
    "print(json.dumps({name: getattr(s, name) for name in ['LOGIN_FAILURES_PER_EMAIL', 'LOGIN_FAILURES_PER_IP', "
    "'WS_RATE_BURST', 'WS_RATE_PER_SECOND', 'WS_MAX_SOCKETS_PER_USER', 'PROXY_HEADERS']} "
    "| {'cache': s.CACHES[s.LIMITS_CACHE]}))"
)


def limits(**env_changes):
    result = run_python(LIMITS, SECRET_KEY="s" * 40, **env_changes)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_limits_defaults_and_a_local_memory_cache_without_redis():
    values = limits()
    assert values.pop("cache")["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    assert values == {
        "LOGIN_FAILURES_PER_EMAIL": 5,
        "LOGIN_FAILURES_PER_IP": 50,
        "WS_RATE_BURST": 500,
        "WS_RATE_PER_SECOND": 50.0,
        "WS_MAX_SOCKETS_PER_USER": 20,
        "PROXY_HEADERS": False,
    }


def test_limits_from_the_environment_and_django_redis_cache_with_a_prefix_of_their_own():
    values = limits(
        LOGIN_FAILURES_PER_EMAIL="0", LOGIN_FAILURES_PER_IP="7", WS_RATE_BURST="10", WS_RATE_PER_SECOND="0.5",
        WS_MAX_SOCKETS_PER_USER="3", PROXY_HEADERS="1", REDIS_URL="redis://127.0.0.1:6379/3", REDIS_KEY_PREFIX="dep-a",
    )
    cache = values.pop("cache")
    assert (cache["BACKEND"], cache["LOCATION"], cache["KEY_PREFIX"]) == (
        "django.core.cache.backends.redis.RedisCache", "redis://127.0.0.1:6379/3", "dep-a:limits"
    )
    assert values == {
        "LOGIN_FAILURES_PER_EMAIL": 0,
        "LOGIN_FAILURES_PER_IP": 7,
        "WS_RATE_BURST": 10,
        "WS_RATE_PER_SECOND": 0.5,
        "WS_MAX_SOCKETS_PER_USER": 3,
        "PROXY_HEADERS": True,
    }


def test_a_negative_limit_is_refused_at_start_up():
    result = run_python(SETUP, SECRET_KEY="s" * 40, WS_MAX_SOCKETS_PER_USER="-1")
    assert result.returncode != 0 and "WS_MAX_SOCKETS_PER_USER must be 0 (off) or more" in result.stderr


def test_a_listen_backlog_below_one_is_refused_at_start_up():
    result = run_python(SETUP, SECRET_KEY="s" * 40, LISTEN_BACKLOG="0")
    assert result.returncode != 0 and "LISTEN_BACKLOG must be 1 or more, not 0" in result.stderr



def database_settings(url):
    code = SETUP + "; from django.conf import settings as s; import json; print(json.dumps(s.DATABASES['default']))"
    result = run_python(code, SECRET_KEY="s" * 40, DATABASE_URL=url, MONGODB_URI="")  # (CI's MongoDB pass sets it)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_sqlite_files_connections_stay_open_between_requests_and_postgresqls_are_pooled():
    assert database_settings("sqlite:////tmp/attendance.sqlite3")["CONN_MAX_AGE"] is None
    postgres = database_settings("postgres://user@127.0.0.1:5432/test")
    assert postgres["CONN_MAX_AGE"] == 0
    assert "pool" in postgres["OPTIONS"]
