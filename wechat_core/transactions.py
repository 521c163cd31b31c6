"""Side effects after commit, which never fail the request that committed.

What a transaction committed is acknowledged (seed 001, flexible availability):
a side effect that leaves the process afterwards (a task enqueued, a notify
published, a shared version bumped, a file deleted) must not turn the answer
into an error when it fails, with Redis down or the broker unreachable. A
`transaction.on_commit` callback that raises does exactly that: the exception
leaves `atomic()` after the commit, the client is told `server_error`, and its
retry finds the work already done (`duplicate: true`).

`after_commit` is the one way to schedule such an effect (a test holds every
app to it); `enqueue_on_commit` is the common case, a Celery task enqueued once
the transaction commits. Tasks are named by their registered name (which is
their module path), so a service enqueues its app's task without importing the
tasks module, which imports the services. A failure is logged and counted in
`side_effects_failed_total{effect}`; what catches the effect up is said where it
is scheduled (a sweep, the next sync, a poll), never here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import import_module

from django.db import transaction

from wechat_core.metrics import counter

logger = logging.getLogger(__name__)

SIDE_EFFECTS_FAILED = counter(
    "side_effects_failed_total",
    "Side effects after commit that failed (the request was answered; a sweep or poll "
    "catches the effect up), by effect.",
    ["effect"],
    process_labels=True,
)


def after_commit(effect: Callable[[], object], *, name: str) -> None:
    """Run `effect` once the current transaction commits (at once outside one).
    `name` is a fixed label naming the effect, e.g. `delivery_enqueue`."""

    def run() -> None:
        try:
            effect()
        except Exception:
            SIDE_EFFECTS_FAILED.inc(name)
            logger.warning("side effect %s failed after commit", name, exc_info=True)

    transaction.on_commit(run)


def task_enqueue(task: str, *args: object) -> None:
    """Enqueue the Celery task registered as `task` ("<module>.<function>") now.
    In the embedded mode (CELERY_TASK_ALWAYS_EAGER) it runs here, before returning."""
    module, _, function = task.rpartition(".")
    getattr(import_module(module), function).delay(*args)


def enqueue_on_commit(task: str, *args: object, name: str) -> None:
    """Enqueue `task` with `args` once the current transaction commits; a failure
    (the broker down) is counted under `name` like any effect of `after_commit`."""
    after_commit(lambda: task_enqueue(task, *args), name=name)
