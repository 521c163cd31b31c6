"""The admission metrics (docs/overload.md): admitted and refused by priority, the
level, queuing time, Celery deadline drops."""

from __future__ import annotations

from wechat_core.metrics import Family, counter, histogram

ADMISSION_REQUESTS = counter(
    "admission_requests_total",
    "Requests and frames offered to admission control, by kind, business priority and outcome.",
    ["kind", "business", "outcome"],
    process_labels=True,
)
# Each process has its own level; the lowest among live processes is the one to watch.
ADMISSION_LEVEL = Family(
    "gauge",
    "admission_level",
    "Admission level (business * 128 + user; 767 admits everything), lowest of the processes.",
    [],
    process_labels=True,
    gauge_mode="livemin",
)
ADMISSION_TIER = Family(
    "gauge",
    "admission_tier",
    "Throttle tier told to clients (0 normal, 1 slow down, 2 stop), highest of the processes.",
    [],
    process_labels=True,
    gauge_mode="livemax",
)
QUEUE_SECONDS = histogram(
    "admission_queue_seconds",
    "Queuing time: HTTP requests before their handler ran, the event loop's lag, the thread "
    "pool's queue, Celery tasks before they started.",
    ["source"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0),
    process_labels=True,
)
DEADLINE_DROPS = counter(
    "celery_deadline_drops_total",
    "Celery tasks dropped unrun because they waited past their deadline.",
    ["task", "queue"],
    process_labels=True,
)
