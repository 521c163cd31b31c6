"""The pace of coupon deliveries to each business, shared by every worker (seed 003:
"严格按业务控制派发峰值 … 频限粒度调整到百毫秒").

One Redis hash per business holds its pace: a factor (1 = its configured rate) and
the current 100 ms tick's count. `PACE_TAKE` (one Lua call, on Redis's own clock so
that every worker counts the same ticks) grants tick k < 9 of a second
floor((k+1)·r/9) - floor(k·r/9) requests, r = rate * factor, and the last tick none:
the ticks of one second add up to r at most, spread evenly, whatever the number of
workers. The empty last tick is a guard band: a request granted late in a second
and a little slow on the way (a busy worker) still reaches the business within
that second by its clock, not on top of the next second's. `PACE_SLOW`
multiplies the factor by SHAKE_PAYOUT_SLOWDOWN_RATIO when the business times out or
answers "too fast" (at most once a second: one burst of refusals is one signal, not
ten); the factor then recovers by SHAKE_PAYOUT_RECOVERY_PER_SECOND each second, back
to 1. Without Redis (the embedded mode) there is no shared pace and deliveries go
unpaced: there is one process and no business at that scale.
"""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.core.cache import cache

from wechat_core.cacheclient import cache_redis

# Effective factor: the stored one recovered linearly since it was set, at most 1.
_FACTOR = """
local function factor(now_ms)
  local f = tonumber(redis.call('HGET', KEYS[1], 'f') or '1')
  local at = tonumber(redis.call('HGET', KEYS[1], 'at') or '0')
  f = f + tonumber(ARGV[2]) * (now_ms - at) / 1000
  if f > 1 then f = 1 end
  return f
end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
# ARGV: rate (per second), recovery per second. Returns {1, 0} when granted, else
# {0, ms until the next tick}.
PACE_TAKE = (
    _FACTOR
    + """
local r = tonumber(ARGV[1]) * factor(now_ms)
local tick = math.floor(now_ms / 100)
local k = tick % 10
local allowed = 0
if k < 9 then
  allowed = math.floor((k + 1) * r / 9) - math.floor(k * r / 9)
end
if tonumber(redis.call('HGET', KEYS[1], 'tick') or '-1') ~= tick then
  redis.call('HSET', KEYS[1], 'tick', tick, 'used', 0)
end
redis.call('EXPIRE', KEYS[1], 86400)
if tonumber(redis.call('HGET', KEYS[1], 'used')) < allowed then
  redis.call('HINCRBY', KEYS[1], 'used', 1)
  return {1, 0}
end
return {0, (tick + 1) * 100 - now_ms}
"""
)
# ARGV: (unused), recovery per second, ratio, floor. Returns the new factor * 1000.
PACE_SLOW = (
    _FACTOR
    + """
if now_ms - tonumber(redis.call('HGET', KEYS[1], 'at') or '0') < 1000 then
  return math.floor(factor(now_ms) * 1000)
end
local f = factor(now_ms) * tonumber(ARGV[3])
if f < tonumber(ARGV[4]) then f = tonumber(ARGV[4]) end
redis.call('HSET', KEYS[1], 'f', tostring(f), 'at', now_ms)
redis.call('EXPIRE', KEYS[1], 86400)
return math.floor(f * 1000)
"""
)
PACE_READ = _FACTOR + "return math.floor(factor(now_ms) * 1000)"


def _key(business_id: int) -> str:
    return str(cache.make_key(f"shake:pace:{business_id}"))


def _client() -> redis.Redis | None:
    return cache_redis()


def token_wait(*, business_id: int, rate: int, within: float) -> bool:
    """Take one request of the business's pace, waiting for the next ticks up to
    `within` seconds. False when none came (the caller puts the delivery back)."""
    client = _client()
    if client is None:
        return True
    deadline = time.monotonic() + within
    while True:
        granted, wait_ms = client.eval(
            PACE_TAKE, 1, _key(business_id), rate, settings.SHAKE_PAYOUT_RECOVERY_PER_SECOND
        )
        if int(granted):
            return True
        pause = max(int(wait_ms), 1) / 1000
        if time.monotonic() + pause > deadline:
            return False
        # Waiting for the next 100 ms tick of the shared pace (not a test's sleep).
        time.sleep(pause)


def pace_slow(*, business_id: int) -> float:
    """The business timed out or said "too fast": slow its pace. The new factor."""
    client = _client()
    if client is None:
        return 1.0
    factor = client.eval(
        PACE_SLOW,
        1,
        _key(business_id),
        0,
        settings.SHAKE_PAYOUT_RECOVERY_PER_SECOND,
        settings.SHAKE_PAYOUT_SLOWDOWN_RATIO,
        settings.SHAKE_PAYOUT_MIN_FACTOR,
    )
    return int(factor) / 1000


def pace_factor(*, business_id: int) -> float:
    """The business's pace now (1 = its configured rate)."""
    client = _client()
    if client is None:
        return 1.0
    factor = client.eval(
        PACE_READ, 1, _key(business_id), 0, settings.SHAKE_PAYOUT_RECOVERY_PER_SECOND
    )
    return int(factor) / 1000
