"""Every Celery task counted and timed through Celery's signals, with no code in the
tasks (DESIGN.md §7): `celery_tasks_total{task, queue, outcome}` and
`celery_task_duration_seconds{task, queue}`. The outcome is Celery's final state
(success, failure, retry, …). Eager tasks (the embedded mode) count under queue
`eager`. Worker processes also start their history flusher here.

Connected by monitoring's AppConfig.ready, so every process that sets Django up
has them."""

from __future__ import annotations

import threading
import time
from typing import Any

from celery import signals

from wechat_core.metrics import counter, histogram

TASKS = counter(
    "celery_tasks_total",
    "Celery tasks run, by task, queue and final state.",
    ["task", "queue", "outcome"],
    process_labels=True,
)
TASK_DURATION = histogram(
    "celery_task_duration_seconds",
    "Time Celery tasks ran.",
    ["task", "queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    process_labels=True,
)
_started: dict[str, float] = {}
_lock = threading.Lock()


def _queue(task: Any) -> str:
    request = getattr(task, "request", None)
    if request is None or getattr(request, "is_eager", False):
        return "eager"
    info = getattr(request, "delivery_info", None) or {}
    return str(info.get("routing_key") or info.get("exchange") or "default")


@signals.task_prerun.connect
def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        with _lock:
            _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    with _lock:
        started = _started.pop(task_id or "", None)
    name = str(getattr(task, "name", None) or "unknown")
    queue = _queue(task)
    TASKS.inc(name, queue, (state or "unknown").lower())
    if started is not None:
        TASK_DURATION.observe(name, queue, value=time.perf_counter() - started)


@signals.worker_process_init.connect
@signals.worker_init.connect
@signals.worker_ready.connect
def _start_worker_process(**_: Any) -> None:
    from monitoring.runtime import process_start

    process_start()


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _flush_on_exit(**_: Any) -> None:
    from monitoring.runtime import flush_now

    flush_now()
