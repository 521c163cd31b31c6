"""A per-account semaphore in Redis: at most N pushes in flight to one developer's
server, so one slow server holds at most N worker slots and cannot starve the
others. Slots expire (a crashed worker cannot hold one for ever). The embedded
mode has no Redis and one process, whose pushes run on a few threads
(publicplatform.embedded): there the same semaphore lives in the process.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
  return 1
end
return 0
"""


_client: redis.Redis | None = None
_script: object = None
# Embedded mode: account id -> {slot token: taken at}.
_local: dict[int, dict[str, float]] = {}
_local_lock = threading.Lock()


def _key(account_id: int) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:pp:webhook-slots:{account_id}"


def _redis() -> redis.Redis | None:
    """One client per process, with the script registered once (EVALSHA): the
    semaphore is on every push's path."""
    global _client, _script
    if not settings.REDIS_URL:
        return None
    if _client is None:
        _client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        _script = _client.register_script(_ACQUIRE)
    return _client


def slot_acquire(*, account_id: int, limit: int, hold_seconds: float) -> str | None:
    """A slot token, or None when `limit` pushes to this account are in flight."""
    token = uuid.uuid4().hex
    now = time.time()
    client = _redis()
    if client is None:
        return token if _local_acquire(account_id, limit, hold_seconds, token, now) else None
    try:
        got = _script(keys=[_key(account_id)], args=[now, hold_seconds, limit, token])  # type: ignore[operator]
    except Exception:
        logger.warning("webhook slots unreachable; pushing to %s without a limit", account_id)
        return token
    return token if int(got) == 1 else None


def _local_acquire(account_id: int, limit: int, hold: float, token: str, now: float) -> bool:
    with _local_lock:
        held = _local.setdefault(account_id, {})
        for stale in [t for t, taken in held.items() if taken <= now - hold]:
            del held[stale]
        if len(held) >= limit:
            return False
        held[token] = now
        return True


def slot_release(*, account_id: int, token: str) -> None:
    client = _redis()
    if client is None:
        with _local_lock:
            _local.get(account_id, {}).pop(token, None)
        return
    try:
        client.zrem(_key(account_id), token)
    except Exception:
        logger.warning("could not release a webhook slot of %s; it expires", account_id)
