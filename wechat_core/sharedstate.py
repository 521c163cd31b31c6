"""Process-local copies of small shared state, kept fresh through a version stamp.

Switches that operators flip (campus blocks) and revocations (tickets) must be
seen by every ASGI process and Celery worker within a second, yet a check on
the hot path must not cost a database or network round trip. Each process
therefore keeps its own copy and re-reads one version stamp from the shared
cache (Redis) at most every SHARED_STATE_POLL_SECONDS. A writer replaces the
stamp with a fresh random value after its transaction commits; a reader that
sees a different stamp reloads.

Random stamps, not counters: after a Redis restart a counter could come back to
a value a process has already seen and hide a change. An unreachable cache
yields a new stamp on every poll, so readers fall back to the database rather
than trusting stale copies.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Generic, TypeVar

from django.conf import settings
from django.core.cache import cache

from wechat_core.transactions import after_commit

logger = logging.getLogger(__name__)
T = TypeVar("T")
_NEVER = float("-inf")


class SharedVersion:
    def __init__(self, name: str) -> None:
        self.key = f"shared-version:{name}"
        self._lock = threading.Lock()
        # Until when the value read last may be trusted: comparing with a
        # precomputed deadline keeps a settings lookup off the hot path (a gray-
        # release check makes this call and must cost about a microsecond).
        self._fresh_until = _NEVER
        self._value: str | None = None

    def current(self) -> str | None:
        if time.monotonic() < self._fresh_until:
            return self._value
        with self._lock:
            if time.monotonic() >= self._fresh_until:
                self._value = self._read()
                self._fresh_until = time.monotonic() + settings.SHARED_STATE_POLL_SECONDS
            return self._value

    def fresh(self) -> bool:
        """Whether `current()` would answer from memory now, without asking Redis (an
        event loop must not wait on it: a caller re-reads in a thread when not)."""
        return time.monotonic() < self._fresh_until

    def bump(self) -> None:
        """Publish a change now. Call after commit (see bump_on_commit)."""
        try:
            cache.set(self.key, uuid.uuid4().hex, timeout=None)
        except Exception:
            logger.warning("could not publish shared version %s; readers will poll", self.key)
        self._fresh_until = _NEVER

    def bump_on_commit(self) -> None:
        after_commit(self.bump, name="shared_state")

    def _read(self) -> str | None:
        try:
            value = cache.get(self.key)
        except Exception:
            logger.warning(
                "shared cache unreachable reading %s; reloading from the database", self.key
            )
            return f"unreachable-{uuid.uuid4().hex}"
        return None if value is None else str(value)


class SharedSnapshot(Generic[T]):
    """A value loaded from the database and reloaded whenever its version changes.

    `max_age` bounds staleness even if a version bump was lost (cache down at the
    moment of the write).
    """

    def __init__(self, name: str, loader: Callable[[], T], *, max_age: float = 30.0) -> None:
        self.version = SharedVersion(name)
        self._loader = loader
        self._max_age = max_age
        self._lock = threading.Lock()
        self._loaded: tuple[str | None, float, T] | None = None
        _snapshots.append(self)  # type: ignore[arg-type]

    def get(self) -> T:
        version = self.version.current()
        loaded = self._loaded
        if (
            loaded is not None
            and loaded[0] == version
            and time.monotonic() - loaded[1] < self._max_age
        ):
            return loaded[2]
        with self._lock:
            value = self._loader()
            self._loaded = (version, time.monotonic(), value)
            return value

    def peek(self) -> T | None:
        """The value if this process's copy is current without asking anyone (its
        version read recently and unchanged, younger than max_age), else None: for an
        event loop, which re-reads with `get` in a thread when it gets None."""
        loaded = self._loaded
        if (
            self.version.fresh()
            and loaded is not None
            and loaded[0] == self.version.current()
            and time.monotonic() - loaded[1] < self._max_age
        ):
            return loaded[2]
        return None

    def invalidate_on_commit(self) -> None:
        """Drop this process's copy now and tell the others once the change commits."""
        self._loaded = None
        self.version.bump_on_commit()

    def forget_local_copy(self) -> None:
        self._loaded = None


_snapshots: list[SharedSnapshot[object]] = []


def forget_local_copies() -> None:
    """Make every snapshot of this process reload on next use (tests use this
    between cases, whose rolled-back transactions never publish a bump)."""
    for snapshot in _snapshots:
        snapshot.forget_local_copy()
