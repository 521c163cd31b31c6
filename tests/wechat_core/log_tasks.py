"""A task that lets secrets slip into a worker's log: a ticket in its own log
line and in an exception, and a follower's openid in httpx's request line."""

from __future__ import annotations

import logging

import httpx
from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="tests.wechat_core.log_tasks.leak")
def leak(*, ticket: str, url: str) -> int:
    logger.warning("handling a request with ticket %s", ticket)
    status = httpx.get(url).status_code  # httpx logs the URL at INFO
    try:
        raise ValueError(f"cannot use ticket {ticket}")
    except ValueError:
        logger.exception("the task failed its own way")
    return status
