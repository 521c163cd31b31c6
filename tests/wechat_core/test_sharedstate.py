"""Shared version stamps: bounded staleness per process, fresh stamps after restarts."""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache, caches
from django.test import override_settings

from tests.support.caches import UNREACHABLE_REDIS_CACHES
from wechat_core.sharedstate import SharedSnapshot, SharedVersion


class Loader:
    """Counts how often a snapshot reloads."""

    def __init__(self) -> None:
        self.loads = 0

    def __call__(self) -> int:
        self.loads += 1
        return self.loads


def test_version__reader_in_another_process_sees_a_bump_after_at_most_one_poll(
    settings: Any,
) -> None:
    # given: two readers standing for two processes, polling every 100 ms
    settings.SHARED_STATE_POLL_SECONDS = 0.1
    writer, reader = SharedVersion("switch"), SharedVersion("switch")
    before = reader.current()
    # when
    writer.bump()
    # then: the reader may still see the old stamp, but not after one poll interval
    time.sleep(0.11)
    assert reader.current() != before


def test_version__between_polls__does_not_touch_the_cache(settings: Any) -> None:
    settings.SHARED_STATE_POLL_SECONDS = 60
    reader = SharedVersion("quiet")
    first = reader.current()
    cache.set(reader.key, "changed-behind-its-back")
    assert reader.current() == first


def test_version__cache_emptied_as_after_a_redis_restart__readers_reload(settings: Any) -> None:
    settings.SHARED_STATE_POLL_SECONDS = 0.01
    loader = Loader()
    snapshot = SharedSnapshot("restart", loader)
    snapshot.version.bump()
    snapshot.get()
    # when: Redis restarts empty
    cache.clear()
    time.sleep(0.02)
    # then: the missing stamp differs from the last one seen, so the copy reloads
    snapshot.get()
    assert loader.loads == 2


def test_version__stamps_are_never_reused() -> None:
    version = SharedVersion("unique")
    stamps = set()
    for _ in range(50):
        version.bump()
        stamps.add(cache.get(version.key))
    assert len(stamps) == 50


def test_snapshot__unreachable_cache__falls_back_to_reloading_every_poll(settings: Any) -> None:
    settings.SHARED_STATE_POLL_SECONDS = 0.01
    loader = Loader()
    snapshot = SharedSnapshot("down", loader)
    with override_settings(CACHES=UNREACHABLE_REDIS_CACHES):
        caches["default"].close()
        snapshot.get()
        time.sleep(0.02)
        snapshot.get()
    assert loader.loads == 2


def test_snapshot__unchanged_version__serves_the_local_copy(settings: Any) -> None:
    settings.SHARED_STATE_POLL_SECONDS = 0.01
    loader = Loader()
    snapshot = SharedSnapshot("steady", loader)
    for _ in range(5):
        snapshot.get()
        time.sleep(0.015)
    assert loader.loads == 1
