"""The sponsor-asset push survives its worker (docs/shake.md "Sponsor assets"): a
Celery worker killed mid-push, the push resumed by another worker's beat from its
durable cursor, and every signed-in user holds the version's `shake_assets` entry
exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from devtools.processes import ServerProcess, start_celery_worker, start_redis
from shake.models import Activity, AssetPush
from tests.factories import login_session, make_user
from tests.shake.conftest import approved_round
from tests.support.waiting import eventually
from wechat_core.sync.models import SyncEntry

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

USERS = 30
# 3 users a transaction, 6 a second: the push of 30 takes 5 s, time to kill it halfway.
PUSH_ENV = {
    "SHAKE_ASSETS_PUSH_BATCH": "3",
    "SHAKE_ASSETS_PUSH_USERS_PER_SECOND": "6",
    "SHAKE_ASSETS_PUSH_STALE_SECONDS": "1",
}


@pytest.fixture
def broker(live_log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Celery]]:
    """A private broker (no other worker of the suite takes these tasks) and a client
    app for it, not the current app (the suite's own enqueues stay on its broker)."""
    server = start_redis(log_dir=live_log_dir)
    url = f"{server.url}/0"
    # Celery reads these variables before any app's own configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    monkeypatch.setenv("CELERY_RESULT_BACKEND", url)
    client = Celery("assets-push-test", broker=url, backend=url, set_as_current=False)
    yield url, client
    client.close()
    server.stop()


def entries_per_user(activity_id: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    for user_id in SyncEntry.objects.filter(
        kind="shake_assets", payload__activity=activity_id, payload__version=1
    ).values_list("user_id", flat=True):
        counts[user_id] = counts.get(user_id, 0) + 1
    return counts


def test_push__worker_killed_mid_push__resumed__every_user_gets_the_entry_once(
    broker: tuple[str, Celery], live_env: dict[str, str], live_log_dir: Path
) -> None:
    # given: signed-in users and an activity whose manifest moved to version 1
    url, client = broker
    users = {login_session(make_user()).user.pk for _ in range(USERS)}
    activity_id = approved_round(prizes_each=1).activity_id
    Activity.objects.filter(pk=activity_id).update(assets_version=1)
    env = live_env | PUSH_ENV | {"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": url}
    first = start_celery_worker(log_dir=live_log_dir, env=env, queues="default", name="push-a")
    second: ServerProcess | None = None
    try:
        # when: the push starts on the first worker, which is killed after a batch or two
        client.send_task("shake.tasks.push_assets", [activity_id, 1], queue="default")
        eventually(
            lambda: AssetPush.objects.filter(activity_id=activity_id, pushed__gt=0).exists(),
            timeout=120,
            what="the first batch of the push",
        )
        first.process.kill()
        first.process.wait(timeout=30)
        push = AssetPush.objects.get(activity_id=activity_id, version=1)
        assert push.finished_at is None, "the push ended before the kill: nothing shown"
        assert 0 < push.pushed < USERS
        stopped_at = push.pushed
        # then: another worker's beat resumes it from its cursor, and it finishes
        second = start_celery_worker(
            log_dir=live_log_dir, env=env, queues="default", name="push-b", beat=True
        )
        eventually(
            lambda: AssetPush.objects.filter(pk=push.pk, finished_at__isnull=False).exists(),
            timeout=120,
            what="the resumed push finishing",
        )
    finally:
        first.stop()
        if second is not None:
            second.stop()
    # and: every signed-in user got the version's entry, exactly once
    counts = entries_per_user(activity_id)
    assert set(counts) == users
    assert set(counts.values()) == {1}
    push.refresh_from_db()
    assert (push.pushed, push.superseded) == (USERS, False)
    assert push.pushed > stopped_at
    assert "shake.tasks.resume_asset_pushes" in second.log()  # the beat's pass resumed it
