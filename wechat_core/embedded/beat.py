"""The embedded mode's stand-in for Celery beat.

`make run` starts no beat and runs Celery tasks in-process
(CELERY_TASK_ALWAYS_EAGER), so without this nothing periodic would happen
there: friend requests would never expire, rollout stages never advance,
rollout guards and alert rules never be judged. With EMBEDDED_BEAT (on when
embedded) one thread of the ASGI process runs every CELERY_BEAT_SCHEDULE entry
when it is due, with the schedules beat itself would use (intervals and
crontabs). Entries run one after another, each as an eager task; one that fails
is logged and tried again when next due. Only one process may run it: it keeps
no lock, as beat keeps none.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.schedules import BaseSchedule, maybe_schedule
from django.conf import settings
from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)
# Never sleep longer than this, so a schedule due soon after start-up is not missed
# by a long first wait.
_LONGEST_SLEEP_SECONDS = 5.0


@dataclass(slots=True)
class BeatEntry:
    name: str
    task: str
    schedule: BaseSchedule
    last_run_at: dt.datetime
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def _as_schedule(value: Any, app: Celery) -> BaseSchedule:
    """A schedule from what CELERY_BEAT_SCHEDULE holds (seconds, a timedelta, a crontab)."""
    schedule = maybe_schedule(value, app=app)
    if not isinstance(schedule, BaseSchedule):
        raise TypeError(f"not a beat schedule: {value!r}")
    return schedule


class EmbeddedBeat:
    """Runs due entries of a beat schedule in the calling thread (`tick`) or its own."""

    def __init__(self, app: Celery, schedule: Mapping[str, Mapping[str, Any]]) -> None:
        self.app = app
        now = app.now()
        # Like beat with a new schedule file: every entry's clock starts now.
        self.entries = [
            BeatEntry(
                name=name,
                task=spec["task"],
                schedule=_as_schedule(spec["schedule"], app),
                last_run_at=now,
                args=tuple(spec.get("args", ())),
                kwargs=dict(spec.get("kwargs", {})),
            )
            for name, spec in schedule.items()
        ]

    def tick(self) -> float:
        """Run every entry that is due; seconds until one may be due next."""
        wait = _LONGEST_SLEEP_SECONDS
        for entry in self.entries:
            is_due, next_check = entry.schedule.is_due(entry.last_run_at)
            if is_due:
                entry.last_run_at = self.app.now()
                self._run(entry)
            wait = min(wait, next_check)
        return max(wait, 0.05)

    def _run(self, entry: BeatEntry) -> None:
        try:
            self.app.tasks[entry.task].apply(args=entry.args, kwargs=entry.kwargs, throw=True)
        except Exception:
            logger.exception("scheduled task %s (%s) failed", entry.name, entry.task)
        finally:
            # This thread outlives any request: give back what the task opened.
            close_old_connections()
            connection.close()

    def start(self) -> None:
        """Tick forever in a daemon thread (it ends with the process)."""
        self.app.loader.import_default_modules()  # every app's tasks.py, as a worker would
        threading.Thread(target=self._loop, name="embedded-beat", daemon=True).start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.tick())


_beat: EmbeddedBeat | None = None
_start_lock = threading.Lock()


def embedded_beat_start() -> EmbeddedBeat | None:
    """Start the schedule in this process if EMBEDDED_BEAT asks for it (idempotent)."""
    global _beat
    if not settings.EMBEDDED_BEAT:
        return None
    with _start_lock:
        if _beat is None:
            from wechat_core.celery import app

            _beat = EmbeddedBeat(app, settings.CELERY_BEAT_SCHEDULE)
            _beat.start()
            logger.info("embedded beat: %d scheduled tasks run in this process", len(_beat.entries))
    return _beat
