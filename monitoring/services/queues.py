"""Celery queue depths: sampled by one task every MONITORING_FLUSH_SECONDS (beat),
written straight into history as one deployment-wide value per queue, and set
on a `mostrecent` gauge for /metrics. Only Redis brokers are measured (the
embedded mode runs tasks in-process: nothing ever waits)."""

from __future__ import annotations

import datetime as dt

import redis
from django.conf import settings

from monitoring.metrics import gauge
from monitoring.services.history import gauge_record

QUEUE_LENGTH = gauge(
    "celery_queue_length", "Tasks waiting in each Celery queue.", ["queue"], mode="mostrecent"
)


def queues_sample(*, at: dt.datetime) -> int:
    """Measure every queue; returns the number of tasks waiting in all of them."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return 0
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    total = 0
    try:
        for queue in settings.CELERY_QUEUE_NAMES:
            length = int(client.llen(queue))
            total += length
            QUEUE_LENGTH.set(queue, value=length)
            gauge_record(family=QUEUE_LENGTH.name, labels={"queue": queue}, value=length, at=at)
    finally:
        client.close()
    return total
