"""Named event counters in the shared cache (Redis in production).

A stop-gap that makes counted events (spam-filter skips, dropped
notifications) visible to every process and to tests until the monitoring
issue brings Prometheus metrics; failures to count never fail the caller.
"""

from __future__ import annotations

import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)


def _key(name: str) -> str:
    return f"counter:{name}"


def counter_incr(name: str, by: int = 1) -> None:
    try:
        cache.add(_key(name), 0, timeout=None)
        cache.incr(_key(name), by)
    except Exception:
        logger.warning("could not count %s", name)


def counter_get(name: str) -> int:
    try:
        return int(cache.get(_key(name)) or 0)
    except Exception:
        return 0
