"""The limiters of common.limits and the Daphne rules of server.daphne_limits, as units."""

from __future__ import annotations

import secrets
import threading

import pytest
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from twisted.web.http_headers import Headers

from common import limits
from common.errors import TooManyRequests
from common.limits import FixedWindow, MessageRate, SocketSlots, TokenBucket, reserve
from server.daphne_limits import last_hop, parse_x_forwarded_for
from tests.support import TOO_MANY_REQUESTS


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cache():
    return LocMemCache(f"unit-{secrets.token_hex(4)}", {})


WINDOW = FixedWindow("unit", 3, 900)


# --- fixed windows -------------------------------------------------------------------------------------------
def test_a_window_slot_is_stable_within_the_window_and_changes_after_it():
    key, ends = WINDOW.slot("subject", 5000.0)
    assert ends - 900 <= 5000.0 < ends
    assert WINDOW.slot("subject", ends - 0.001) == (key, ends)
    next_key, next_ends = WINDOW.slot("subject", ends)
    assert next_key != key and next_ends == ends + 900


def test_window_keys_hash_the_subject_and_windows_are_staggered():
    key, _ = WINDOW.slot("someone@example.com\x00203.0.113.9", 0.0)
    assert "someone" not in key and "203.0.113" not in key and " " not in key and len(key) < 100
    ends = {WINDOW.slot(f"subject-{i}", 0.0)[1] for i in range(20)}
    assert len(ends) > 1  # not every subject's window ends at the same second


def test_the_attempt_over_the_limit_is_refused_with_the_seconds_left_in_its_window(cache):
    now = 10_000.0
    _, ends = WINDOW.slot("s", now)
    for _ in range(3):
        reserve([(WINDOW, "s")], cache=cache, now=now).failed()
    with pytest.raises(TooManyRequests) as refused:
        reserve([(WINDOW, "s")], cache=cache, now=now)
    assert refused.value.message == TOO_MANY_REQUESTS
    assert refused.value.retry_after == max(1, int(-(-(ends - now) // 1)))
    assert 1 <= refused.value.retry_after <= 900
    # Retry-After is honest: at the window's end the subject is let through again.
    reserve([(WINDOW, "s")], cache=cache, now=ends)


def test_retry_after_is_at_least_one_second(cache):
    _, ends = WINDOW.slot("s", 0.0)
    now = ends - 0.2
    for _ in range(3):
        reserve([(WINDOW, "s")], cache=cache, now=now).failed()
    with pytest.raises(TooManyRequests) as refused:
        reserve([(WINDOW, "s")], cache=cache, now=now)
    assert refused.value.retry_after == 1


def test_only_failures_stay_counted(cache):
    for _ in range(10):
        with reserve([(WINDOW, "s")], cache=cache, now=0.0):
            pass  # a success gives its count back
    for _ in range(3):
        with reserve([(WINDOW, "s")], cache=cache, now=0.0) as attempt:
            attempt.failed()
    with pytest.raises(TooManyRequests):
        reserve([(WINDOW, "s")], cache=cache, now=0.0)


def test_an_error_during_the_attempt_gives_the_count_back(cache):
    for _ in range(5):
        with pytest.raises(RuntimeError), reserve([(WINDOW, "s")], cache=cache, now=0.0):
            raise RuntimeError("the database is down: not a failed login")
    reserve([(WINDOW, "s")], cache=cache, now=0.0)


def test_refused_attempts_do_not_count_on_any_limit(cache):
    tight, loose = FixedWindow("tight", 1, 900), FixedWindow("loose", 3, 900)
    reserve([(tight, "a"), (loose, "ip")], cache=cache, now=0.0).failed()
    for _ in range(10):
        with pytest.raises(TooManyRequests):
            reserve([(tight, "a"), (loose, "ip")], cache=cache, now=0.0)
    # The loose limit saw one failure, not eleven.
    reserve([(tight, "b"), (loose, "ip")], cache=cache, now=0.0).failed()
    reserve([(tight, "c"), (loose, "ip")], cache=cache, now=0.0).failed()
    with pytest.raises(TooManyRequests):
        reserve([(tight, "d"), (loose, "ip")], cache=cache, now=0.0)


def test_attempts_in_flight_count_so_concurrent_ones_cannot_overshoot(cache):
    held = [reserve([(WINDOW, "s")], cache=cache, now=0.0) for _ in range(3)]
    with pytest.raises(TooManyRequests):
        reserve([(WINDOW, "s")], cache=cache, now=0.0)
    with held[0]:
        pass  # turned out a success
    reserve([(WINDOW, "s")], cache=cache, now=0.0)


def test_concurrent_threads_never_pass_more_than_the_limit(cache):
    window = FixedWindow("threads", 25, 900)
    admitted = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(20):
            try:
                reserve([(window, "s")], cache=cache, now=0.0).failed()
            except TooManyRequests:
                continue
            admitted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 25


def test_a_limit_of_zero_is_off(cache):
    off = FixedWindow("off", 0, 900)
    for _ in range(100):
        reserve([(off, "s")], cache=cache, now=0.0).failed()


def test_a_failing_cache_lets_the_attempt_through(caplog):
    class Broken:
        def add(self, *args, **kwargs):
            raise ConnectionError("redis is down")

    attempt = reserve([(WINDOW, "s")], cache=Broken(), now=0.0)
    attempt.failed()
    assert "not limited" in caplog.text


def test_a_counter_that_expired_meanwhile_is_created_again(cache):
    class ExpiringBetweenAddAndIncr(LocMemCache):
        expired_once = False

        def incr(self, key, delta=1, version=None):
            if not self.expired_once:
                self.expired_once = True
                self.delete(key, version=version)
            return super().incr(key, delta, version)

    flaky = ExpiringBetweenAddAndIncr(f"flaky-{secrets.token_hex(4)}", {})
    reserve([(WINDOW, "s")], cache=flaky, now=0.0).failed()
    reserve([(WINDOW, "s")], cache=flaky, now=0.0).failed()
    assert flaky.get(WINDOW.slot("s", 0.0)[0]) == 1  # the first count expired; the second started afresh


def test_login_attempt_reads_the_limits_and_lower_cases_the_email(settings):
    settings.LOGIN_FAILURES_PER_EMAIL, settings.LOGIN_FAILURES_PER_IP = 2, 0
    for email in ("Someone@Example.com", "someone@example.com"):
        limits.login_attempt(email, "192.0.2.1").failed()
    with pytest.raises(TooManyRequests):
        limits.login_attempt("SOMEONE@example.com", "192.0.2.1")
    limits.login_attempt("someone@example.com", "192.0.2.2")  # another address: its own count
    assert isinstance(caches[settings.LIMITS_CACHE], LocMemCache)


# --- the token bucket and the message rate -------------------------------------------------------------------------
def test_a_bucket_allows_its_burst_then_its_refill_rate():
    clock = Clock()
    bucket = TokenBucket(5, 2.0, clock)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.now += 0.5  # one token back
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now += 100  # refills up to the burst, no further
    assert sum(bucket.take() for _ in range(10)) == 5


def test_the_message_rate_warns_at_most_once_a_second():
    clock = Clock()
    rate = MessageRate(2, 1.0, clock)
    assert [rate.allow() for _ in range(3)] == [True, True, False]
    assert [rate.warn(), rate.warn()] == [True, False]
    clock.now += 0.9
    assert rate.warn() is False
    clock.now += 0.1
    assert rate.warn() is True


@pytest.mark.parametrize(("burst", "per_second"), [(0, 50), (500, 0), (0, 0)])
def test_a_message_rate_with_a_zero_is_off(burst, per_second):
    rate = MessageRate(burst, per_second, Clock())
    assert all(rate.allow() for _ in range(10_000))


# --- sockets per user -----------------------------------------------------------------------------------------------
def test_socket_slots_cap_each_user_and_come_back_when_released():
    slots = SocketSlots()
    assert all(slots.acquire("u", f"s{i}", 3) for i in range(3))
    assert slots.acquire("u", "s3", 3) is False
    assert slots.acquire("other", "x", 3) is True
    assert slots.acquire("u", "s0", 3) is True  # the same socket again holds the same slot
    slots.release("s1")
    slots.release("s1")  # twice is harmless
    slots.release("never-acquired")
    assert slots.acquire("u", "s3", 3) is True
    assert slots.count("u") == 3


def test_socket_slots_with_a_limit_of_zero_are_unlimited_and_release_cleans_up():
    slots = SocketSlots()
    assert all(slots.acquire("u", f"s{i}", 0) for i in range(100))
    for i in range(100):
        slots.release(f"s{i}")
    assert slots.by_user == {} and slots.user_of == {}


# --- the client address behind a proxy -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([b"203.0.113.7"], "203.0.113.7"),
        ([b"198.51.100.1, 203.0.113.7"], "203.0.113.7"),
        ([b"spoofed", b"198.51.100.1,203.0.113.7 "], "203.0.113.7"),
        ([b"2001:db8::1"], "2001:db8::1"),
        ([b"198.51.100.1, "], "198.51.100.1"),
        ([b" , "], None),
        ([b""], None),
    ],
)
def test_the_last_hop_is_the_client(values, expected):
    assert last_hop(values) == expected


def test_daphne_reads_the_last_hop_from_http_and_websocket_headers():
    peer = ["10.0.0.2", 51000]
    http_headers = Headers({b"X-Forwarded-For": [b"1.1.1.1, 203.0.113.7"], b"X-Forwarded-Proto": [b"https"]})
    assert parse_x_forwarded_for(http_headers, original_addr=peer, original_scheme="http") == (
        ["203.0.113.7", 0],
        "https",
    )
    ws_headers = {b"x-forwarded-for": b"1.1.1.1, 203.0.113.7", b"x-forwarded-port": b"443"}
    assert parse_x_forwarded_for(ws_headers, original_addr=peer) == (["203.0.113.7", 443], None)
    assert parse_x_forwarded_for({b"host": b"x"}, original_addr=peer) == (peer, None)
    assert parse_x_forwarded_for(Headers({b"X-Forwarded-For": [b" "]}), original_addr=peer) == (peer, None)
    assert parse_x_forwarded_for(http_headers, address_header_name=None, original_addr=peer) == (peer, None)
