"""Celery queue depths: sampled by one task every MONITORING_FLUSH_SECONDS (beat),
written straight into history as one deployment-wide value per queue, and set
on a `mostrecent` gauge for /metrics. Only Redis brokers are measured (the
embedded mode runs tasks in-process: nothing ever waits)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings

from monitoring.services.history import gauge_record
from wechat_core import datacenters
from wechat_core.cacheclient import redis_connect
from wechat_core.metrics import gauge
from wechat_core.replication.selectors import replication_status

REPLICATION_BACKLOG = gauge(
    "replication_outbox_backlog",
    "Replication outbox entries of this data centre not yet confirmed by the broker.",
    mode="mostrecent",
)
REPLICATION_OLDEST = gauge(
    "replication_outbox_oldest_seconds",
    "Age of the oldest unshipped replication outbox entry (0: none).",
    mode="mostrecent",
)
REPLICATION_LAG = gauge(
    "replication_lag_seconds",
    "Per peer data centre: write there to applied here, of the last entry replayed.",
    ["peer"],
    mode="mostrecent",
)
REPLICATION_ERRORS = gauge(
    "replication_replay_errors_last_hour",
    "Replication entries whose replay failed here in the last hour (retried).",
    mode="mostrecent",
)
REPLICATION_PARKED = gauge(
    "replication_replay_parked",
    "Replication entries parked here: they failed every attempt and were passed over, or "
    "wait, untried, behind one of their conversation or users.",
    mode="mostrecent",
)
QUEUE_LENGTH = gauge(
    "celery_queue_length", "Tasks waiting in each Celery queue.", ["queue"], mode="mostrecent"
)


def queues_sample(*, at: dt.datetime) -> int:
    """Measure every queue; returns the number of tasks waiting in all of them."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return 0
    client = redis_connect(url, timeout=2)
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


def replication_sample(*, at: dt.datetime) -> int:
    """With several data centres: the outbox backlog, each peer's lag, replay errors and
    parked entries (into history, so that alert rules see them). Returns the backlog."""
    if not datacenters.enabled():
        return 0
    status = replication_status(now=at)
    values: list[tuple[Any, dict[str, str], float]] = [
        (REPLICATION_BACKLOG, {}, status.backlog),
        (REPLICATION_OLDEST, {}, status.oldest_unshipped_seconds),
        (REPLICATION_ERRORS, {}, status.errors_last_hour),
        (REPLICATION_PARKED, {}, status.parked),
    ]
    values += [(REPLICATION_LAG, {"peer": peer.origin}, peer.lag_seconds) for peer in status.peers]
    for family, labels, value in values:
        family.set(*labels.values(), value=value)
        gauge_record(family=family.name, labels=labels, value=value, at=at)
    return status.backlog
