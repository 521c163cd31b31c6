"""The official-accounts stack for live tests: a daphne and the Celery workers of the
Procfile (each with its pool, concurrency and queues, as `make serve` runs them),
on a private Redis broker, so that no other worker of the suite (with other
settings) takes their tasks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools.processes import (
    ServerProcess,
    procfile_workers,
    spawn_asgi_server,
    spawn_celery_worker,
    start_redis,
    stop_all,
    wait_until_healthy,
    wait_until_ready,
)


@dataclass(frozen=True)
class PlatformStack:
    daphne: ServerProcess
    workers: dict[str, ServerProcess]  # Procfile process name -> worker


@contextmanager
def platform_stack_running(
    *, env: dict[str, str], log_dir: Path, name: str = "platform", include: str = ""
) -> Iterator[PlatformStack]:
    broker = start_redis(log_dir=log_dir)
    env = env | {"CELERY_BROKER_URL": f"{broker.url}/0", "CELERY_RESULT_BACKEND": f"{broker.url}/0"}
    started: list[ServerProcess] = [broker]
    try:
        # All booted side by side, then waited for.
        daphne = spawn_asgi_server(log_dir=log_dir, env=env, name=f"daphne-{name}")
        started.append(daphne)
        workers = {}
        for process in procfile_workers():
            workers[process] = spawn_celery_worker(
                log_dir=log_dir, env=env, procfile=process, name=f"{name}-{process}",
                include=include,
            )  # fmt: skip
            started.append(workers[process])
        wait_until_healthy(daphne)
        for worker in workers.values():
            wait_until_ready(worker)
        yield PlatformStack(daphne, workers)
    finally:
        stop_all(started[::-1])
