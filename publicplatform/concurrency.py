"""A per-account semaphore in Redis: at most N pushes in flight to one developer's
server, so one slow server holds at most N worker slots and cannot starve the
others. Slots expire (a crashed worker cannot hold one for ever). The embedded
mode, with one process and no Redis, keeps the counts in the process.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCacheClient

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

_local_lock = threading.Lock()
_local: dict[str, dict[str, float]] = {}


def _key(account_id: int) -> str:
    return f"pp:webhook-slots:{account_id}"


def _redis() -> object | None:
    if isinstance(cache._cache, RedisCacheClient):  # type: ignore[attr-defined]
        return cache._cache.get_client(cache.make_key("x"), write=True)  # type: ignore[attr-defined]
    return None


def slot_acquire(*, account_id: int, limit: int, hold_seconds: float) -> str | None:
    """A slot token, or None when `limit` pushes to this account are in flight."""
    token = uuid.uuid4().hex
    now = time.time()
    client = _redis()
    if client is None:
        with _local_lock:
            slots = _local.setdefault(_key(account_id), {})
            for held, since in list(slots.items()):
                if since < now - hold_seconds:
                    del slots[held]
            if len(slots) >= limit:
                return None
            slots[token] = now
            return token
    try:
        got = client.eval(  # type: ignore[attr-defined]
            _ACQUIRE, 1, cache.make_key(_key(account_id)), now, hold_seconds, limit, token
        )
    except Exception:
        logger.warning("webhook slots unreachable; pushing to %s without a limit", account_id)
        return token
    return token if int(got) == 1 else None


def slot_release(*, account_id: int, token: str) -> None:
    client = _redis()
    if client is None:
        with _local_lock:
            _local.get(_key(account_id), {}).pop(token, None)
        return
    try:
        client.zrem(cache.make_key(_key(account_id)), token)  # type: ignore[attr-defined]
    except Exception:
        logger.warning("could not release a webhook slot of %s; it expires", account_id)
