"""Tasks of the Celery deadline test (tests/wechat_core/test_admission_live.py)."""

import time
from pathlib import Path

from celery import shared_task


@shared_task(name="tests.wechat_core.admission_tasks.hold")
def hold(path: str) -> bool:
    """Keep the worker's only thread busy until the test creates `path` (at most 60 s)."""
    deadline = time.monotonic() + 60
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return True


@shared_task(name="tests.wechat_core.admission_tasks.late", acks_late=True)
def late(x: int) -> int:
    return x


@shared_task(name="tests.wechat_core.admission_tasks.patient", acks_late=True)
def patient(x: int) -> int:
    return x
