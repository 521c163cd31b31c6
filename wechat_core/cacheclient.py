"""The shared cache's Redis connection, for the few callers that pipeline.

Django's cache API costs one round trip per call; a hot path that needs several
commands at once (a counter with its expiry, one mark per message of a receipt)
pipelines them on the cache's own Redis client instead, with the cache's own
key names (`cache.make_key`). Where the cache is not Redis (the embedded mode),
callers fall back to the cache API.
"""

from __future__ import annotations

import redis
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCacheClient


def cache_redis() -> redis.Redis | None:
    """The Redis client the default cache writes to, or None if it is not Redis."""
    backend = cache._cache  # type: ignore[attr-defined]
    if not isinstance(backend, RedisCacheClient):
        return None
    # Every write goes to the first server, whatever the key (RedisCacheClient).
    return backend.get_client(write=True)
