"""Over the wire: the failed-login limits (docs/production.md "Limits against abuse") on real Daphne processes.

They count per client address, and every test reaches the servers from 127.0.0.1, so these tests use
servers of their own (never the session's shared wire server): one with the default limits, one behind a
"proxy" (PROXY_HEADERS on, small limits; each test names its own client addresses in X-Forwarded-For), one
with the limits off, and two workers sharing Redis. Then the admin's login (counted with /auth/login's
failures) and sign-ups per address, on one more server behind a "proxy".
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
import redis
from django.conf import settings

from common.limits import SIGNUP_WINDOW_SECONDS, FixedWindow
from live.tests.services_available import redis_url, require_redis
from tests.servers import DaphneServer, scratch_database
from tests.support import (
    BAD_CREDENTIALS,
    INVALID_SCHEMA,
    PASSWORD,
    TOO_MANY_REQUESTS,
    Person,
    assert_error,
    assert_ok,
    assert_too_many_requests,
    log_since,
    log_size,
    own_wire_server,
    server_cpu_seconds,
    unique_email,
)

pytestmark = pytest.mark.wire

REDIS_DB = 12


def client_for(server: DaphneServer) -> httpx.Client:
    return httpx.Client(base_url=server.http_url, timeout=30.0)


def login(client: httpx.Client, email: str, password: str = PASSWORD, forwarded_for: str | None = None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post("/auth/login", json={"email": email, "password": password}, headers=headers)


# A test's counts must stay in one window: a window that ends mid-test starts its count again (limits.FixedWindow
# offsets each subject's windows by a hash), and the test would see a failure less than it made. So each test
# counts against subjects whose current windows have at least this long left.
STEADY_SECONDS = 30
PEER = "127.0.0.1"  # the address every test reaches its servers from


def seconds_left(name: str, subject: str) -> float:
    """How long `subject`'s current window of the failed-login limit `name` has left."""
    now = time.time()
    return FixedWindow(name, 1, settings.LOGIN_FAILURE_WINDOW_SECONDS).slot(subject, now)[1] - now


def is_steady(ip: str, emails: tuple[str, ...]) -> bool:
    subjects = [("login-ip", ip)] + [("login-email", f"{email.lower()}\0{ip}") for email in emails]
    return all(seconds_left(name, subject) >= STEADY_SECONDS for name, subject in subjects)


def random_ip(*emails: str) -> str:
    """A made-up client address (RFC 2544's benchmarking range) whose windows, and those of `emails` from it,
    are steady."""
    while True:
        address = "198.18.{}.{}".format(*secrets.token_bytes(2))
        if is_steady(address, emails):
            return address


def steady_email(role: str) -> str:
    """A new email whose window from the peer address is steady."""
    while True:
        email = unique_email(role)
        if seconds_left("login-email", f"{email}\0{PEER}") >= STEADY_SECONDS:
            return email


def wait_for_steady_peer() -> None:
    """The peer address cannot be chosen: if its window is about to end (rarely), wait for the next one."""
    left = seconds_left("login-ip", PEER)
    if left < STEADY_SECONDS:
        time.sleep(left + 0.1)


@pytest.fixture(scope="module")
def default_limits(tmp_path_factory) -> Iterator[httpx.Client]:
    with own_wire_server(tmp_path_factory.mktemp("limits")) as server, client_for(server) as client:
        yield client


@pytest.fixture(scope="module")
def proxied_server(tmp_path_factory) -> Iterator[DaphneServer]:
    # bcrypt at its production cost, so that the CPU a refused login does not spend can be seen.
    env = {"PROXY_HEADERS": "1", "LOGIN_FAILURES_PER_EMAIL": "3", "LOGIN_FAILURES_PER_IP": "6", "BCRYPT_ROUNDS": "12"}
    with own_wire_server(tmp_path_factory.mktemp("proxied"), env) as server:
        yield server


@pytest.fixture
def proxied(proxied_server) -> Iterator[httpx.Client]:
    with client_for(proxied_server) as client:
        yield client


# --- the default limits, the socket's peer as the client ------------------------------------------------------------
def test_the_6th_wrong_password_for_one_email_is_429_while_another_email_from_the_same_address_logs_in(
    default_limits,
):
    victim = Person(default_limits, "student", email=steady_email("student"))
    other = Person(default_limits, "teacher")
    for _ in range(5):
        assert_error(login(default_limits, victim.email, "wrong-password"), 400, BAD_CREDENTIALS)
    first = assert_too_many_requests(login(default_limits, victim.email, "wrong-password"))
    assert_too_many_requests(login(default_limits, victim.email.upper()))  # right password, same email: not checked
    assert_ok(login(default_limits, other.email))
    time.sleep(1.1)
    later = assert_too_many_requests(login(default_limits, victim.email, "wrong-password"))
    assert later <= first  # counting down to the end of the window


def test_successes_and_schema_errors_do_not_count(default_limits):
    person = Person(default_limits, "student", email=steady_email("student"))
    for _ in range(10):
        assert_ok(login(default_limits, person.email))
        response = default_limits.post("/auth/login", json={"email": person.email, "password": ""})
        assert_error(response, 400, INVALID_SCHEMA)
    for _ in range(5):
        assert_error(login(default_limits, person.email, "wrong-password"), 400, BAD_CREDENTIALS)
    assert_too_many_requests(login(default_limits, person.email, "wrong-password"))


def test_x_forwarded_for_is_ignored_without_proxy_headers(default_limits):
    email = steady_email("nobody")
    for _ in range(5):
        assert_error(login(default_limits, email, forwarded_for=random_ip()), 400, BAD_CREDENTIALS)
    assert_too_many_requests(login(default_limits, email, forwarded_for=random_ip()))


# --- behind a proxy: the last X-Forwarded-For hop ---------------------------------------------------------------
def test_the_failures_of_one_address_are_limited_across_emails(proxied):
    person = Person(proxied, "student")
    address = random_ip()
    for _ in range(6):
        assert_error(login(proxied, unique_email("guess"), forwarded_for=address), 400, BAD_CREDENTIALS)
    assert_too_many_requests(login(proxied, person.email, forwarded_for=address))
    assert_ok(login(proxied, person.email, forwarded_for=random_ip()))


def test_the_client_is_the_last_forwarded_hop_which_the_client_cannot_forge(proxied, proxied_server):
    person = Person(proxied, "teacher")
    address = random_ip()
    offset = log_size(proxied_server)
    for _ in range(6):
        # A new made-up first hop every time: the proxy's hop (the last) is what counts.
        assert_error(login(proxied, unique_email("guess"), forwarded_for=f"{random_ip()}, {address}"), 400,
                     BAD_CREDENTIALS)
    assert_too_many_requests(login(proxied, person.email, forwarded_for=f"{random_ip()}, {address}"))
    # Claiming the blocked address as the first hop does not make another client that address.
    assert_ok(login(proxied, person.email, forwarded_for=f"{address}, {random_ip()}"))
    # Daphne's access log names the same client (one rule everywhere).
    logged = log_since(proxied_server, offset)
    failures = [line for line in logged.splitlines() if '"POST /auth/login" 400' in line]
    assert len(failures) == 6 and all(line.startswith(f"{address}:0 ") for line in failures), failures


def test_refused_logins_do_not_count_and_cost_no_password_check(proxied, proxied_server):
    email = unique_email("victim")
    address = random_ip(email)
    before = server_cpu_seconds(proxied_server)
    for _ in range(3):
        assert_error(login(proxied, email, forwarded_for=address), 400, BAD_CREDENTIALS)
    three_checks = server_cpu_seconds(proxied_server) - before
    before = server_cpu_seconds(proxied_server)
    for _ in range(20):
        assert_too_many_requests(login(proxied, email, forwarded_for=address))
    twenty_refusals = server_cpu_seconds(proxied_server) - before
    # bcrypt at cost 12 takes a quarter of a second or so; a refusal, a few milliseconds.
    assert twenty_refusals < three_checks, (twenty_refusals, three_checks)
    # The address has 3 failures, not 23: three more are answered before the address limit (6).
    for _ in range(3):
        assert_error(login(proxied, unique_email("other"), forwarded_for=address), 400, BAD_CREDENTIALS)
    assert_too_many_requests(login(proxied, unique_email("other"), forwarded_for=address))


# --- limits set to 0 -----------------------------------------------------------------------------------------------
def test_login_limits_of_zero_are_off(unlimited_server):
    with client_for(unlimited_server) as client:
        person = Person(client, "student")
        for _ in range(60):
            assert_error(login(client, person.email, "wrong-password"), 400, BAD_CREDENTIALS)
        assert_ok(login(client, person.email))


# --- two workers sharing Redis ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_workers(tmp_path_factory) -> Iterator[tuple[httpx.Client, httpx.Client, redis.Redis, str]]:
    url = redis_url(REDIS_DB)
    require_redis(url)
    prefix = f"test-limits-{secrets.token_hex(4)}"
    env = {
        "REDIS_URL": url,
        "REDIS_KEY_PREFIX": prefix,
        "REDIS_CHANNEL_PREFIX": f"{prefix}-asgi",
        "LOGIN_FAILURES_PER_EMAIL": "5",
        "LOGIN_FAILURES_PER_IP": "8",
    }
    tmp_dir = tmp_path_factory.mktemp("two-workers")
    with scratch_database(tmp_dir) as db_env, redis.Redis.from_url(url, socket_timeout=5) as shared:
        servers = [DaphneServer({**db_env, **env}, log_path=tmp_dir / f"worker{i}.log") for i in range(2)]
        servers[0].migrate()
        try:
            for server in servers:
                server.start()
            with client_for(servers[0]) as a, client_for(servers[1]) as b:
                yield a, b, shared, prefix
        finally:
            for server in servers:
                server.stop()
            for key in shared.scan_iter(match=f"{prefix}*", count=1000):  # ours only: never a flush
                shared.delete(key)


def test_two_workers_sharing_redis_count_failures_together(two_workers):
    a, b, shared, prefix = two_workers
    person = Person(a, "student", email=steady_email("student"))
    wait_for_steady_peer()  # the address limit is counted below too
    for worker in (a, b, a, b, a):
        assert_error(login(worker, person.email, "wrong-password"), 400, BAD_CREDENTIALS)
    assert_too_many_requests(login(b, person.email))
    assert_too_many_requests(login(a, person.email))
    # The counters are in Redis, under the deployment's prefix, expiring with their window.
    keys = list(shared.scan_iter(match=f"{prefix}:limits:*", count=1000))
    assert keys and all(0 < shared.ttl(key) <= 15 * 60 + 60 for key in keys)
    # The address limit (8) is shared too: 5 failures so far, three more on either worker, then refused.
    for worker in (b, a, b):
        assert_error(login(worker, unique_email("guess"), "wrong-password"), 400, BAD_CREDENTIALS)
    assert_too_many_requests(login(a, unique_email("guess")))
    assert_too_many_requests(login(b, unique_email("guess")))


# --- the admin's login and sign-ups, per client address (behind a "proxy": each test names its addresses) -------------
SIGNUPS = 3
ADMIN_PAGE_REFUSED = b"Please enter the correct email and password for a staff account"


@pytest.fixture(scope="module")
def per_address_server(tmp_path_factory) -> Iterator[DaphneServer]:
    env = {"PROXY_HEADERS": "1", "LOGIN_FAILURES_PER_EMAIL": "3", "SIGNUPS_PER_IP": str(SIGNUPS)}
    with own_wire_server(tmp_path_factory.mktemp("per-address"), env) as server:
        yield server


@pytest.fixture(scope="module")
def superuser_email(per_address_server) -> str:
    email = unique_email("admin")
    per_address_server.shell(
        "from accounts.models import User\n"
        f"User.objects.create_superuser(email={email!r}, password={PASSWORD!r}, name='Ada Admin')\n"
    )
    return email


def admin_login(client: httpx.Client, email: str, password: str, address: str) -> httpx.Response:
    """Log in through the admin's form as a browser would (its page, its CSRF cookie and field), from `address`:
    the client keeps the session cookie when it logs in."""
    headers = {"X-Forwarded-For": address}
    page = client.get("/admin/login/", headers=headers)
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    form = {"csrfmiddlewaretoken": token, "username": email, "password": password, "next": "/admin/"}
    return client.post("/admin/login/", data=form, headers=headers)


def is_admin(client: httpx.Client, address: str) -> bool:
    return client.get("/admin/", headers={"X-Forwarded-For": address}).status_code == 200


def test_the_admin_login_is_refused_after_the_limit_even_with_the_right_password(per_address_server, superuser_email):
    address = random_ip(superuser_email)
    with client_for(per_address_server) as client:
        for _ in range(2):
            response = admin_login(client, superuser_email, "wrong-password", address)
            assert response.status_code == 200 and ADMIN_PAGE_REFUSED in response.content
    # Below the limit (3), the right password logs in ...
    with client_for(per_address_server) as client:
        response = admin_login(client, superuser_email, PASSWORD, address)
        assert response.status_code == 302 and response.headers["Location"] == "/admin/"
        assert is_admin(client, address)
    with client_for(per_address_server) as client:
        assert admin_login(client, superuser_email, "wrong-password", address).status_code == 200
    # ... and at the limit it is refused, its password not checked: the form again, with the limits' error.
    with client_for(per_address_server) as client:
        assert_too_many_requests_page(admin_login(client, superuser_email, PASSWORD, address))
        assert not is_admin(client, address)
    # The same counters as /auth/login's.
    with client_for(per_address_server) as api:
        assert_too_many_requests(login(api, superuser_email, forwarded_for=address))
        assert_ok(login(api, superuser_email, forwarded_for=random_ip(superuser_email)))


def test_failures_through_auth_login_lock_the_admin_login_too(per_address_server, superuser_email):
    address = random_ip(superuser_email)
    with client_for(per_address_server) as client:
        for _ in range(3):
            assert_error(login(client, superuser_email, "wrong-password", forwarded_for=address), 400, BAD_CREDENTIALS)
        assert_too_many_requests_page(admin_login(client, superuser_email, PASSWORD, address))
        assert not is_admin(client, address)


def assert_too_many_requests_page(response: httpx.Response) -> None:
    assert response.status_code == 429 and b"<form" in response.content, response.status_code
    assert TOO_MANY_REQUESTS.encode() in response.content and ADMIN_PAGE_REFUSED not in response.content
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 900, retry_after


def steady_signup_ip() -> str:
    """A made-up address whose sign-up window (an hour) has at least STEADY_SECONDS left."""
    while True:
        address = "198.18.{}.{}".format(*secrets.token_bytes(2))
        now = time.time()
        if FixedWindow("signup-ip", 1, SIGNUP_WINDOW_SECONDS).slot(address, now)[1] - now >= STEADY_SECONDS:
            return address


def test_signups_over_the_limit_of_an_address_are_429_with_retry_after(per_address_server):
    address = steady_signup_ip()
    with client_for(per_address_server) as client:

        def signup(forwarded_for: str) -> httpx.Response:
            body = {"name": "Rahul", "email": unique_email("rahul"), "password": PASSWORD, "role": "student"}
            return client.post("/auth/signup", json=body, headers={"X-Forwarded-For": forwarded_for})

        for _ in range(SIGNUPS):
            assert_ok(signup(address), 201)
        for _ in range(2):
            refused = signup(address)
            assert_error(refused, 429, TOO_MANY_REQUESTS)
            retry_after = refused.headers["Retry-After"]
            assert retry_after.isdigit() and 1 <= int(retry_after) <= SIGNUP_WINDOW_SECONDS, retry_after
        assert_ok(signup(steady_signup_ip()), 201)  # another address signs up
