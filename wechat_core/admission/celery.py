"""Celery deadlines: a task that waited past its deadline is dropped, not run for a
caller who has given up (seed 000, 防雪崩).

At publish (`before_task_publish`, in the publishing process) a task without an
expiry gets one: its queue's deadline from ADMISSION_TASK_DEADLINES (a task name
may have its own; 0 means none, as for payouts, whose reconciliation must see
every order), counted from its ETA when it has one. The deadline travels as
Celery's own `expires` message header. The worker checks it when a message
arrives (and drops it, `task_revoked` with expired=True, counted here), but not
when the task leaves the pool's own queue: with a busy thread or process pool a
task received in time can wait there past its deadline. So every task's class
is `DeadlineTask` (the app's task_cls, wechat_core.celery), whose `__call__`
checks the deadline first thing in the tracer: past it, the task is marked
REVOKED (a caller waiting on the result gets TaskRevokedError), counted, and
ends with Ignore. The tracer treats Ignore as a finished task, so the message
is **acknowledged**, also with `acks_late` (acks_on_failure_or_timeout), and not
redelivered.

Why not raise Ignore in `task_prerun`: Celery's signal dispatcher catches and
logs receivers' exceptions, so the task would run anyway. `task_prerun` here
only measures how long the task queued (header `published_at`).
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Task
from celery.exceptions import Ignore
from celery.signals import before_task_publish, task_prerun, task_revoked
from celery.utils.time import maybe_iso8601, maybe_make_aware
from django.conf import settings

from wechat_core.admission.metrics import DEADLINE_DROPS, QUEUE_SECONDS

PUBLISHED_AT = "published_at"


def deadline_seconds(task_name: str, queue: str) -> float:
    deadlines: dict[str, float] = settings.ADMISSION_TASK_DEADLINES
    if task_name in deadlines:
        return float(deadlines[task_name])
    return float(deadlines.get(queue, deadlines.get("*", 0)))


@before_task_publish.connect(dispatch_uid="admission-deadline")
def _set_deadline(
    sender: str | None = None,
    headers: dict[str, Any] | None = None,
    routing_key: str | None = None,
    **_: Any,
) -> None:
    if headers is None:
        return
    headers.setdefault(PUBLISHED_AT, time.time())
    if headers.get("expires"):
        return  # the caller chose
    seconds = deadline_seconds(str(sender or headers.get("task", "")), routing_key or "")
    if seconds <= 0:
        return
    start = datetime.now(UTC)
    if headers.get("eta"):
        with contextlib.suppress(TypeError, ValueError):
            start = max(start, datetime.fromisoformat(str(headers["eta"])))
    headers["expires"] = (start + timedelta(seconds=seconds)).isoformat()


@task_prerun.connect(dispatch_uid="admission-queued")
def _measure(task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    published = getattr(request, PUBLISHED_AT, None)
    if isinstance(published, (int, float)) and not getattr(request, "is_eager", False):
        QUEUE_SECONDS.observe("celery", value=max(0.0, time.time() - published))


@task_revoked.connect(dispatch_uid="admission-drops")
def _count_drop(request: Any = None, expired: bool = False, **_: Any) -> None:
    if not expired:
        return
    info = getattr(request, "delivery_info", None) or {}
    name = getattr(request, "task", None) or getattr(request, "name", None) or "unknown"
    DEADLINE_DROPS.inc(str(name), str(info.get("routing_key") or "unknown"))


def expired(expires: object) -> bool:
    if not expires:
        return False
    moment = maybe_iso8601(expires) if isinstance(expires, str) else expires
    if not isinstance(moment, datetime):
        return False
    return bool(maybe_make_aware(moment, UTC) < datetime.now(UTC))


class DeadlineTask(Task):  # type: ignore[type-arg]
    """The base of every task: one past its deadline is dropped before it runs."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if not getattr(request, "is_eager", False) and expired(getattr(request, "expires", None)):
            info = getattr(request, "delivery_info", None) or {}
            DEADLINE_DROPS.inc(self.name, str(info.get("routing_key") or "unknown"))
            self.backend.mark_as_revoked(str(request.id), "expired", request=request)
            raise Ignore()
        return super().__call__(*args, **kwargs)
