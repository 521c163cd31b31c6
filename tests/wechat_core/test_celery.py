"""Celery as the Procfile runs it: every task has a hard time limit, so a runaway
task (issue 11: a keyword pattern that backtracked for minutes) holds a worker
process for CELERY_TASK_TIME_LIMIT at most, and the worker goes on serving."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from devtools.processes import ServerProcess, start_celery_worker, start_redis
from wechat_core.celery import app as suite_app

pytestmark = pytest.mark.live


@pytest.fixture
def procfile_worker(
    live_env: dict[str, str], live_log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ServerProcess, Celery]]:
    """The Procfile's `worker` with a 3 s hard limit, on a broker of its own, and a
    client app for that broker."""
    broker = start_redis(log_dir=live_log_dir)
    url = f"{broker.url}/0"
    # Celery reads these variables before any app's own configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    monkeypatch.setenv("CELERY_RESULT_BACKEND", url)
    env = live_env | {
        "CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": url,
        "CELERY_TASK_SOFT_TIME_LIMIT": "2", "CELERY_TASK_TIME_LIMIT": "3",
    }  # fmt: skip
    worker = start_celery_worker(
        log_dir=live_log_dir, env=env, procfile="worker", name="time-limits",
        include="tests.wechat_core.sample_tasks",
    )  # fmt: skip
    # Not the current app: shared tasks enqueued by later tests of this process would
    # go to this broker, stopped by then (a later module's enqueue failed so once the
    # suite ran the live modules first).
    client = Celery("time-limit-test", broker=url, backend=url, set_as_current=False)
    yield worker, client
    client.close()
    worker.stop()
    broker.stop()
    suite_app.set_current()


def wait_for_log(worker: ServerProcess, text: str, timeout: float = 30) -> None:
    """The worker writes its log after it stores the task's result."""
    deadline = time.monotonic() + timeout
    while text not in worker.log():
        assert time.monotonic() < deadline, f"{text!r} is not in the worker's log"
        time.sleep(0.05)


def test_worker__runaway_tasks__stopped_at_the_soft_then_the_hard_limit_and_the_worker_goes_on(
    procfile_worker: tuple[ServerProcess, Celery],
) -> None:
    # given: the Procfile's worker, and two tasks that would run for hours, one of
    # which swallows the soft limit's exception
    worker, client = procfile_worker
    # when: they run
    runaway = client.send_task("tests.wechat_core.sample_tasks.backtrack", [40], queue="default")
    stubborn = client.send_task("tests.wechat_core.sample_tasks.stubborn", [40], queue="default")
    # then: the first is stopped at the soft limit, the second killed at the hard one
    with pytest.raises(SoftTimeLimitExceeded):
        runaway.get(timeout=60)
    with pytest.raises(TimeLimitExceeded):
        stubborn.get(timeout=60)
    wait_for_log(
        worker, "Hard time limit (3.0s) exceeded for tests.wechat_core.sample_tasks.stubborn"
    )
    # and: both its processes serve the next tasks
    results = [
        client.send_task("tests.wechat_core.sample_tasks.double", [n], queue="default")
        for n in range(4)
    ]
    assert [result.get(timeout=30) for result in results] == [0, 2, 4, 6]
