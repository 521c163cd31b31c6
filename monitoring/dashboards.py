"""What the dashboards show: panels of lines, each line a history query
(selectors), for the overview, one module, or one client version.

Every page refreshes itself from `dashboard_data` (views.dashboard_data) every
MONITORING_DASHBOARD_REFRESH_SECONDS; the newest point is the newest bucket
every process has flushed (selectors.settled_until).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from monitoring.selectors import (
    Query,
    WindowValue,
    alerts_open,
    guard_blocks_recent,
    settled_until,
    timeseries,
    window_values_by,
)

RANGES = {
    "15m": (900, 0),
    "1h": (3600, 0),
    "6h": (6 * 3600, 60),
    "24h": (86400, 300),
    "7d": (7 * 86400, 1800),
}
HTTP = "http_requests_total"
LATENCY = "http_request_duration_seconds"
DELAY = "messaging_delivery_delay_seconds"
# The clients' view of the network (messaging.services.linkstats; seed 002's smc).
LINK_CONNECTS = "client_link_connects_total"
LINK_CONNECT = "client_link_connect_seconds"
LINK_RTT = "client_link_rtt_seconds"


@dataclass(frozen=True)
class Line:
    label: str
    query: Query
    scale: float = 1.0  # e.g. 1000 to show seconds as milliseconds


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    unit: str
    lines: list[Line] = field(default_factory=list)
    stacked: bool = False


def _q(family: str, aggregation: str, filters: dict[str, Any] | None = None, **extra: Any) -> Query:
    return Query(family=family, aggregation=aggregation, filters=filters or {}, **extra)


def http_panels(filters: dict[str, Any]) -> list[Panel]:
    return [
        Panel(
            "requests",
            "HTTP requests per second",
            "req/s",
            [
                Line("all", _q(HTTP, "rate", filters)),
                Line("4xx", _q(HTTP, "rate", {**filters, "outcome": "4xx"})),
                Line("5xx", _q(HTTP, "rate", {**filters, "outcome": "5xx"})),
            ],
        ),
        Panel(
            "errors",
            "Error rate (5xx share)",
            "%",
            [
                Line("5xx", _q(HTTP, "ratio", filters, numerator={"outcome": "5xx"}), 100.0),
            ],
        ),
        Panel(
            "latency",
            "Latency",
            "ms",
            [Line(name, _q(LATENCY, name, filters), 1000.0) for name in ("p50", "p95", "p99")],
        ),
    ]


def overview_panels() -> list[Panel]:
    delay_buckets = [
        ("0-1 s", 1.0),
        ("1-2 s", 2.0),
        ("2-5 s", 5.0),
        ("5-10 s", 10.0),
        ("> 10 s", math.inf),
    ]
    return [
        *http_panels({}),
        Panel(
            "websockets",
            "Open websockets",
            "links",
            [
                Line("open", _q("websocket_open_connections", "last")),
            ],
        ),
        Panel(
            "messages",
            "Messages per second",
            "msg/s",
            [
                Line("sent", _q("messaging_messages_sent_total", "rate")),
                Line("delivered", _q("messaging_messages_delivered_total", "rate")),
            ],
        ),
        Panel(
            "delay",
            "Message delay (receipts per second, by bucket)",
            "/s",
            [Line(label, _q(DELAY, "bucket", bound=bound), 1.0) for label, bound in delay_buckets],
            stacked=True,
        ),
        Panel(
            "client-links",
            "Clients' links: connects per second (as clients report them)",
            "/s",
            [
                Line(
                    "websocket ok",
                    _q(LINK_CONNECTS, "rate", {"transport": "websocket", "outcome": "ok"}),
                ),
                Line(
                    "websocket failed",
                    _q(LINK_CONNECTS, "rate", {"transport": "websocket", "outcome": "failed"}),
                ),
                Line(
                    "long-poll ok",
                    _q(LINK_CONNECTS, "rate", {"transport": "longpoll", "outcome": "ok"}),
                ),
            ],
        ),
        Panel(
            "client-link-times",
            "Clients' links: time to connect and round trip",
            "ms",
            [
                Line("connect p50", _q(LINK_CONNECT, "p50"), 1000.0),
                Line("connect p99", _q(LINK_CONNECT, "p99"), 1000.0),
                Line("rtt p50", _q(LINK_RTT, "p50"), 1000.0),
                Line("rtt p99", _q(LINK_RTT, "p99"), 1000.0),
            ],
        ),
        Panel(
            "queues",
            "Celery queue depth",
            "tasks",
            [
                Line(queue, _q("celery_queue_length", "last", {"queue": queue}))
                for queue in settings.CELERY_QUEUE_NAMES
            ],
        ),
        Panel(
            "tasks",
            "Celery tasks per second",
            "tasks/s",
            [
                Line("run", _q("celery_tasks_total", "rate")),
                Line("failed", _q("celery_tasks_total", "rate", {"outcome": "failure"})),
            ],
        ),
        Panel(
            "guard",
            "Traffic guard",
            "/s",
            [
                Line("clients blocked", _q("monitoring_traffic_guard_blocks_total", "rate")),
                Line("requests refused", _q("monitoring_traffic_guard_refused_total", "rate")),
            ],
        ),
    ]


def version_panels(version: str) -> list[Panel]:
    filters = {"client_version": version}
    return [
        *http_panels(filters),
        Panel(
            "frames",
            "Websocket frames per second",
            "frames/s",
            [
                Line("all", _q("websocket_frames_total", "rate", filters)),
                Line(
                    "errors", _q("websocket_frames_total", "rate", {**filters, "outcome": "error"})
                ),
            ],
        ),
        Panel(
            "delay",
            "Message delay p95",
            "s",
            [
                Line("p95", _q(DELAY, "p95", filters)),
            ],
        ),
    ]


def panels_for(page: str, name: str) -> list[Panel]:
    if page == "module":
        return http_panels({"module": name})
    if page == "version":
        return version_panels(name)
    return overview_panels()


def _render(panel: Panel, since: dt.datetime, until: dt.datetime, step: int) -> dict[str, Any]:
    times: list[float] = []
    values = []
    for line in panel.lines:
        series = timeseries(query=line.query, since=since, until=until, step=step)
        times = series.times
        values.append([None if v is None else v * line.scale for v in series.values])
    return {
        "id": panel.id,
        "title": panel.title,
        "unit": panel.unit,
        "stacked": panel.stacked,
        "lines": [line.label for line in panel.lines],
        "times": times,
        "values": values,
    }


def _breakdown(
    label: str, filters: dict[str, Any], since: dt.datetime, until: dt.datetime
) -> list[dict[str, Any]]:
    """Requests/s, 5xx share and p99 for each value of `label` (module, version, route)."""

    def by_value(query: Query) -> dict[str, WindowValue]:
        return window_values_by(query=query, label=label, since=since, until=until)

    rates = by_value(_q(HTTP, "rate", filters))
    errors = by_value(_q(HTTP, "ratio", filters, numerator={"outcome": "5xx"}))
    p99s = by_value(_q(LATENCY, "p99", filters))
    rows = []
    for value, rate in rates.items():
        p99 = p99s[value].value if value in p99s else None
        rows.append(
            {
                "name": value,
                "rate": rate.value,
                "error_rate": errors[value].value,
                "p99_ms": None if p99 is None else p99 * 1000,
            }
        )
    return sorted(rows, key=lambda row: (-(row["rate"] or 0), row["name"]))


def dashboard_data(*, page: str, name: str, range_name: str) -> dict[str, Any]:
    seconds, step = RANGES.get(range_name, RANGES["1h"])
    until = settled_until()
    since = until - timedelta(seconds=seconds)
    step = step or settings.MONITORING_FLUSH_SECONDS
    data: dict[str, Any] = {
        "page": page,
        "name": name,
        "range": range_name,
        "step": step,
        "until": until.timestamp(),
        "generated_at": timezone.now().timestamp(),
        "panels": [_render(panel, since, until, step) for panel in panels_for(page, name)],
    }
    recent = until - timedelta(minutes=5)
    if page == "overview":
        data["modules"] = _breakdown("module", {}, recent, until)
        data["versions"] = _breakdown("client_version", {}, recent, until)
        data["firing"] = [
            {
                "id": a.pk,
                "rule": a.rule.name,
                "severity": a.rule.severity,
                "state": a.state,
                "since": a.started_at.isoformat(),
                "value": a.value,
            }
            for a in alerts_open()
        ]
        data["guard"] = [
            {
                "identity": b.identity,
                "endpoint": b.endpoint,
                "repeats": b.repeats,
                "at": b.created_at.isoformat(),
                "until": b.until.isoformat(),
            }
            for b in guard_blocks_recent(limit=20)
        ]
    elif page == "module":
        data["routes"] = _breakdown("route", {"module": name}, recent, until)
    return data
