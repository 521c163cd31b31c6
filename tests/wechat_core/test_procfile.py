"""The Procfile's Celery workers, as `make serve` runs them: every queue has exactly
one kind of worker, and the queues whose tasks wait on the outside world run on
threads, never in the prefork processes message delivery needs (docs/deploy.md)."""

from __future__ import annotations

from django.conf import settings

from devtools.processes import procfile_argv, procfile_workers


def worker_options() -> dict[str, dict[str, str]]:
    options: dict[str, dict[str, str]] = {}
    for process in procfile_workers():
        argv = procfile_argv(process, {})
        options[process] = dict(
            arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg
        )
    return options


def test_every_queue__is_consumed_by_exactly_one_procfile_worker() -> None:
    consumed = [queue for opts in worker_options().values() for queue in opts["queues"].split(",")]
    assert sorted(consumed) == sorted(settings.CELERY_QUEUE_NAMES)


def test_queues_that_wait_on_the_outside__run_on_threads_apart_from_delivery() -> None:
    by_queue = {
        queue: opts for opts in worker_options().values() for queue in opts["queues"].split(",")
    }
    for waiting in ("webhook", "payout_slow"):
        assert by_queue[waiting].get("pool") == "threads", waiting
        assert "delivery" not in by_queue[waiting]["queues"].split(","), waiting
    assert by_queue["delivery"].get("pool", "prefork") == "prefork"
