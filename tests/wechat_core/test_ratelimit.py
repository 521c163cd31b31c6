"""Rate-limit counters and locks in the shared cache; an unreachable cache lets traffic through."""

from __future__ import annotations

import time
from typing import Any

import redis
import time_machine
from django.conf import settings
from django.core.cache import caches
from django.test import override_settings

from tests.support.caches import UNREACHABLE_REDIS_CACHES
from wechat_core import ratelimit


def test_window_hit__counts_per_identity_and_scope() -> None:
    hits = [
        ratelimit.window_hit(scope="s", identity="a", window_seconds=60).count for _ in range(3)
    ]
    other = ratelimit.window_hit(scope="s", identity="b", window_seconds=60).count
    other_scope = ratelimit.window_hit(scope="t", identity="a", window_seconds=60).count
    assert (hits, other, other_scope) == ([1, 2, 3], 1, 1)


def test_window_hit__retry_after_is_within_the_window() -> None:
    result = ratelimit.window_hit(scope="s", identity="a", window_seconds=60)
    assert 0 < result.retry_after <= 60


def test_window_hit__new_window__starts_from_one() -> None:
    ratelimit.window_hit(scope="s", identity="a", window_seconds=1)
    ratelimit.window_hit(scope="s", identity="a", window_seconds=1)
    time.sleep(1.05)
    assert ratelimit.window_hit(scope="s", identity="a", window_seconds=1).count == 1


def _seconds_before_a_minute_edge(seconds: float) -> float:
    return (int(time.time() // 60) + 2) * 60 - seconds


def test_window_hit_sliding__across_a_window_edge__counts_the_previous_windows_events() -> None:
    # given: 8 events half a second before a minute's edge
    with time_machine.travel(_seconds_before_a_minute_edge(0.5), tick=False) as clock:
        before_edge = [
            ratelimit.window_hit_sliding(scope="s", identity="a", window_seconds=60).count
            for _ in range(8)
        ]
        # when: one more a second later, in the next fixed window
        clock.shift(1.0)
        after_edge = ratelimit.window_hit_sliding(scope="s", identity="a", window_seconds=60)
        fixed = ratelimit.window_hit(scope="s2", identity="a", window_seconds=60)
        # then: the sliding count goes on (8 weighted by 59/60 rounds to 8, plus this
        # one), where a fixed window starts again from 1
        assert before_edge == list(range(1, 9))
        assert (after_edge.count, fixed.count) == (9, 1)
        # and: near the end of this window the previous one has all but slid out
        clock.shift(59.0)
        assert ratelimit.window_hit_sliding(scope="s", identity="a", window_seconds=60).count == 2


def test_window_reset__forgets_the_previous_window_of_a_sliding_count() -> None:
    with time_machine.travel(_seconds_before_a_minute_edge(0.5), tick=False) as clock:
        for _ in range(5):
            ratelimit.window_hit_sliding(scope="s", identity="a", window_seconds=60)
        clock.shift(1.0)
        ratelimit.window_reset(scope="s", identity="a", window_seconds=60)
        assert ratelimit.window_hit_sliding(scope="s", identity="a", window_seconds=60).count == 1


def test_lock__remaining_time_counts_down_and_clears() -> None:
    ratelimit.lock_set(scope="s", identity="a", seconds=30)
    assert 29 < ratelimit.lock_remaining(scope="s", identity="a") <= 30
    ratelimit.lock_clear(scope="s", identity="a")
    assert ratelimit.lock_remaining(scope="s", identity="a") == 0


def test_keys__never_contain_the_identity_in_clear() -> None:
    # when: a login failure for an e-mail address is counted and locked
    ratelimit.window_hit(scope="login", identity="alice@example.com", window_seconds=60)
    ratelimit.lock_set(scope="login", identity="alice@example.com", seconds=60)
    # then: Redis holds the keys, but not the address
    keys = [
        str(key)
        for key in redis.Redis.from_url(settings.REDIS_URL, decode_responses=True).keys("*rl:*")
    ]
    assert len(keys) == 2
    assert not any("alice" in key or "example.com" in key for key in keys)


def test_cache_unreachable__limiter_lets_traffic_through_and_logs(caplog: Any) -> None:
    with override_settings(CACHES=UNREACHABLE_REDIS_CACHES):
        caches["default"].close()
        result = ratelimit.window_hit(scope="s", identity="a", window_seconds=60)
        leased = ratelimit.window_hit_leased(scope="s", identity="a", window_seconds=60, limit=100)
        remaining = ratelimit.lock_remaining(scope="s", identity="a")
    assert (result.count, leased.count, remaining) == (0, 0, 0)
    assert "unreachable" in caplog.text


# --- Leased windows: the send path's limit, counted out in memory ----------------------


def redis_count(scope: str, identity: str, window_seconds: int) -> int:
    window = int(time.time() // window_seconds)
    return int(caches["default"].get(f"{ratelimit._key('win', scope, identity)}:{window}") or 0)


def test_window_hit_leased__counts_like_window_hit_but_reserves_a_tenth_at_a_time() -> None:
    counts = [
        ratelimit.window_hit_leased(scope="s", identity="a", window_seconds=60, limit=100).count
        for _ in range(25)
    ]
    assert counts == list(range(1, 26))
    # three leases of 10 taken from Redis for 25 hits: 3 round trips, not 25
    assert redis_count("s", "a", 60) == 30


def test_window_hit_leased__a_second_process__continues_after_the_first_ones_lease() -> None:
    # given: one process counted 3 of its lease of 10
    for _ in range(3):
        ratelimit.window_hit_leased(scope="s", identity="a", window_seconds=60, limit=100)
    # when: another process (no leases of its own) counts the same identity
    ratelimit.leases_clear()
    other = ratelimit.window_hit_leased(scope="s", identity="a", window_seconds=60, limit=100)
    # then: it counts after everything reserved: early by the unused 7, never late
    assert other.count == 11


def test_window_hit_leased__refuses_at_the_limit_like_the_plain_window() -> None:
    counts = [
        ratelimit.window_hit_leased(scope="s", identity="a", window_seconds=60, limit=20).count
        for _ in range(21)
    ]
    assert [c > 20 for c in counts] == [False] * 20 + [True]


def test_window_hit_leased__new_window__starts_from_one() -> None:
    ratelimit.window_hit_leased(scope="s", identity="a", window_seconds=1, limit=100)
    time.sleep(1.05)
    assert (
        ratelimit.window_hit_leased(scope="s", identity="a", window_seconds=1, limit=100).count == 1
    )


def test_window_hit_leased__reset__forgets_the_lease_too() -> None:
    for _ in range(5):
        ratelimit.window_hit_leased(scope="s", identity="a", window_seconds=60, limit=100)
    ratelimit.window_reset(scope="s", identity="a", window_seconds=60)
    assert (
        ratelimit.window_hit_leased(scope="s", identity="a", window_seconds=60, limit=100).count
        == 1
    )
