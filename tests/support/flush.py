"""Transactional tests' teardown truncates every table while the live processes
(ASGI servers, Celery workers and their beat) may still be finishing a
transaction of their own. PostgreSQL then detects a deadlock and aborts one side,
sometimes the TRUNCATE; as its manual says of deadlocks, the aborted transaction
is retried. Only deadlocks are retried: any other failure of the flush stands."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandError
from django.core.management.commands import flush

ATTEMPTS = 5


def _deadlocked(error: CommandError) -> bool:
    return "deadlock detected" in str(error.__cause__ or "")


def flush_retrying_deadlocks() -> None:
    original = flush.Command.handle

    def handle(self: flush.Command, *args: Any, **options: Any) -> Any:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return original(self, *args, **options)
            except CommandError as error:
                if attempt == ATTEMPTS or not _deadlocked(error):
                    raise
                time.sleep(0.1 * attempt)  # back off: let the other side finish
        return None

    flush.Command.handle = handle  # type: ignore[method-assign]
