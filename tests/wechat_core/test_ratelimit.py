"""Rate-limit counters and locks in the shared cache; an unreachable cache lets traffic through."""

from __future__ import annotations

import time
from typing import Any

import redis
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
        remaining = ratelimit.lock_remaining(scope="s", identity="a")
    assert (result.count, remaining) == (0, 0)
    assert "unreachable" in caplog.text
