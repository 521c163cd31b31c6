"""Tasks of the Celery time-limit test (tests/wechat_core/test_celery.py)."""

import re

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded


def _catastrophic(length: int) -> bool:
    """Issue 11's runaway: Python's re on a pattern that backtracks for hours."""
    return re.search(r"^(a+)+$", "a" * length + "!") is not None


@shared_task(name="tests.wechat_core.sample_tasks.backtrack")
def backtrack(length: int) -> bool:
    return _catastrophic(length)


@shared_task(name="tests.wechat_core.sample_tasks.stubborn")
def stubborn(length: int) -> bool:
    """The same, in code that swallows the soft limit's exception and goes on."""
    while True:
        try:
            return _catastrophic(length)
        except SoftTimeLimitExceeded:
            continue


@shared_task(name="tests.wechat_core.sample_tasks.double")
def double(x: int) -> int:
    return x * 2
