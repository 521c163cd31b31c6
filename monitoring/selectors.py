"""Reads of monitoring: metric history (series by labels, time series and window
values), and the alerts and traffic-guard blocks the operator pages list.

Both the dashboards and alert evaluation read through `window_value` and
`timeseries`, so what an operator sees is what a rule judges. Only buckets that
every process has had time to flush are read (`settled_until`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from monitoring.models import (
    Alert,
    AlertEvent,
    AlertState,
    DrDrill,
    GuardBlock,
    MetricPoint,
    MetricSeries,
)
from monitoring.services.history import MINUTE, bucket_start
from wechat_core.metrics import FAMILIES
from wechat_core.quantiles import histogram_quantile, share_above

QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
# A flush lands within about a second of its bucket's end; allow for slow ones.
SETTLE_SECONDS = 2.0


def settled_until(now: dt.datetime | None = None) -> dt.datetime:
    """The end of the newest fine bucket every process has flushed."""
    now = now or timezone.now()
    return bucket_start(now - timedelta(seconds=SETTLE_SECONDS), settings.MONITORING_FLUSH_SECONDS)


def resolution_for(since: dt.datetime, now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    fine_from = now - timedelta(seconds=settings.MONITORING_FINE_RETENTION_SECONDS - 60)
    return settings.MONITORING_FLUSH_SECONDS if since >= fine_from else MINUTE


def labels_match(labels: Mapping[str, Any], filters: Mapping[str, Any]) -> bool:
    """A filter value matches equal values; a list, any of them; "!x", anything but x."""
    for name, wanted in filters.items():
        have = labels.get(name)
        if isinstance(wanted, list):
            if have not in [str(w) for w in wanted]:
                return False
        elif isinstance(wanted, str) and wanted.startswith("!"):
            if have == wanted[1:]:
                return False
        elif have != str(wanted):
            return False
    return True


def series_for(
    *, family: str, filters: Mapping[str, Any], parts: Iterable[str]
) -> list[MetricSeries]:
    return [
        series
        for series in MetricSeries.objects.filter(family=family, part__in=list(parts))
        if labels_match(series.labels, filters)
    ]


def _points(
    series: list[MetricSeries], resolution: int, since: dt.datetime, until: dt.datetime
) -> list[tuple[int, dt.datetime, float]]:
    if not series:
        return []
    return list(
        MetricPoint.objects.filter(
            resolution=resolution,
            series_id__in=[s.id for s in series],
            start__gte=since,
            start__lt=until,
        ).values_list("series_id", "start", "value")
    )


@dataclass(frozen=True, slots=True)
class Query:
    """What to compute from a family: see monitoring.models.Aggregation."""

    family: str
    aggregation: str
    filters: Mapping[str, Any]
    numerator: Mapping[str, Any] | None = None
    bound: float | None = None


@dataclass(frozen=True, slots=True)
class WindowValue:
    value: float | None  # None: no data to judge
    volume: float  # observations behind it (requests, receipts, …)


def _step_of(start: dt.datetime, origin: dt.datetime, step: int) -> dt.datetime:
    offset = int((start - origin).total_seconds()) // step * step
    return origin + timedelta(seconds=offset)


Steps = tuple[
    dict[dt.datetime, float], dict[dt.datetime, float], dict[dt.datetime, dict[float | None, float]]
]
Point = tuple[int, dt.datetime, float]


def _series_of(query: Query) -> tuple[str, list[MetricSeries]]:
    """The family's kind, and the series (of the parts the aggregation reads) that
    match the query's filters."""
    declared = FAMILIES.get(query.family)
    if declared is not None:
        kind: str = declared.kind
    else:  # declared in a module this process never imported: the history knows
        stored = MetricSeries.objects.filter(family=query.family).values_list("kind", flat=True)
        kind = stored.first() or "counter"
    if kind == "histogram":
        reads_buckets = query.aggregation in (*QUANTILES, "share_above", "bucket")
        parts = ["bucket"] if reads_buckets else ["count", "sum"]
    else:
        parts = ["value"]
    return kind, series_for(family=query.family, filters=query.filters, parts=parts)


def _accumulate(
    query: Query,
    kind: str,
    series: list[MetricSeries],
    points: Iterable[Point],
    since: dt.datetime,
    step: int,
) -> Steps:
    """Per step: the (denominator) sum, the numerator sum, and histogram buckets."""
    totals: dict[dt.datetime, float] = defaultdict(float)
    numerators: dict[dt.datetime, float] = defaultdict(float)
    buckets: dict[dt.datetime, dict[float | None, float]] = defaultdict(lambda: defaultdict(float))
    by_id = {s.id: s for s in series}
    numerator_ids = (
        {s.id for s in series if labels_match(s.labels, query.numerator)}
        if query.numerator is not None
        else set()
    )
    gauge_steps: dict[dt.datetime, dict[dt.datetime, float]] = defaultdict(
        lambda: defaultdict(float)
    )
    for sid, start, value in points:
        at = _step_of(start, since, step)
        part = by_id[sid].part
        if kind == "gauge":
            gauge_steps[at][start] += value  # summed over instances per bucket
        elif part == "bucket":
            buckets[at][by_id[sid].le] += value
        elif part == "sum":
            numerators[at] += value
        else:
            totals[at] += value
            if sid in numerator_ids:
                numerators[at] += value
    for at, per_bucket in gauge_steps.items():
        newest = max(per_bucket)
        totals[at] = max(per_bucket.values()) if query.aggregation == "max" else per_bucket[newest]
        numerators[at] = totals[at]
    return totals, numerators, buckets


def _collect(
    query: Query, resolution: int, since: dt.datetime, until: dt.datetime, step: int
) -> Steps:
    kind, series = _series_of(query)
    return _accumulate(query, kind, series, _points(series, resolution, since, until), since, step)


def _combine(
    query: Query,
    total: float,
    numerator: float,
    buckets: Mapping[float | None, float],
    seconds: float,
) -> WindowValue:
    aggregation = query.aggregation
    if aggregation in QUANTILES:
        volume = sum(buckets.values())
        return WindowValue(histogram_quantile(QUANTILES[aggregation], buckets), volume)
    if aggregation == "share_above":
        return WindowValue(share_above(query.bound or 0.0, buckets), sum(buckets.values()))
    if aggregation == "bucket":  # observations in the one bucket ending at `bound`
        le = None if query.bound is None or math.isinf(query.bound) else query.bound
        return WindowValue(buckets.get(le, 0.0), sum(buckets.values()))
    if aggregation == "rate":
        return WindowValue(total / seconds if seconds else None, total)
    if aggregation == "increase":
        return WindowValue(total, total)
    if aggregation == "ratio":
        return WindowValue(numerator / total if total else None, total)
    if aggregation == "mean":  # histogram: sum / count
        return WindowValue(numerator / total if total else None, total)
    return WindowValue(total, 1.0)  # gauges: last / max


def _window(query: Query, kind: str, steps: Steps, seconds: int) -> WindowValue:
    totals, numerators, buckets = steps
    merged: dict[float | None, float] = defaultdict(float)
    for per_step in buckets.values():
        for le, n in per_step.items():
            merged[le] += n
    if kind == "gauge" and not totals:
        return WindowValue(None, 0.0)
    return _combine(query, sum(totals.values()), sum(numerators.values()), merged, seconds)


def _window_bounds(since: dt.datetime, until: dt.datetime) -> tuple[int, dt.datetime, dt.datetime]:
    resolution = resolution_for(since)
    return resolution, bucket_start(since, resolution), bucket_start(until, resolution)


def window_value(*, query: Query, since: dt.datetime, until: dt.datetime) -> WindowValue:
    """The query's value over [since, until)."""
    resolution, since, until = _window_bounds(since, until)
    seconds = max(1, int((until - since).total_seconds()))
    kind, series = _series_of(query)
    points = _points(series, resolution, since, until)
    return _window(query, kind, _accumulate(query, kind, series, points, since, seconds), seconds)


def window_values_by(
    *, query: Query, label: str, since: dt.datetime, until: dt.datetime
) -> dict[str, WindowValue]:
    """`window_value` for each value `label` has taken (the per-module and
    per-version tables), from one read of the points rather than one per value."""
    resolution, since, until = _window_bounds(since, until)
    seconds = max(1, int((until - since).total_seconds()))
    kind, series = _series_of(query)
    groups: dict[str, list[MetricSeries]] = defaultdict(list)
    for member in series:
        if label in member.labels:
            groups[str(member.labels[label])].append(member)
    group_of = {member.id: value for value, members in groups.items() for member in members}
    points: dict[str, list[Point]] = defaultdict(list)
    for point in _points(series, resolution, since, until):
        if point[0] in group_of:
            points[group_of[point[0]]].append(point)
    return {
        value: _window(
            query, kind, _accumulate(query, kind, members, points[value], since, seconds), seconds
        )
        for value, members in groups.items()
    }


@dataclass(frozen=True, slots=True)
class TimeSeries:
    times: list[float]  # unix seconds of each step's start
    values: list[float | None]


def timeseries(*, query: Query, since: dt.datetime, until: dt.datetime, step: int) -> TimeSeries:
    """The query's value per `step` seconds from `since` until `until`."""
    resolution = resolution_for(since)
    step = max(step, resolution)
    since = bucket_start(since, step)
    totals, numerators, buckets = _collect(query, resolution, since, until, step)
    times, values = [], []
    at = since
    while at < until:
        value = _combine(
            query, totals.get(at, 0.0), numerators.get(at, 0.0), buckets.get(at, {}), step
        )
        missing = query.aggregation in ("last", "max") and at not in totals
        times.append(at.timestamp())
        values.append(
            None
            if missing or (value.value is not None and math.isnan(value.value))
            else value.value
        )
        at += timedelta(seconds=step)
    return TimeSeries(times, values)


# --- Alerts and blocks (operator pages; staff only, no user's data) -----------------


def alerts_open() -> QuerySet[Alert]:
    """Pending and firing alerts, newest first, with their rules."""
    return Alert.objects.filter(state__in=[AlertState.PENDING, AlertState.FIRING]).select_related(
        "rule"
    )


def alert_events_recent(*, limit: int) -> list[AlertEvent]:
    """The history page: the newest transitions of every alert."""
    return list(AlertEvent.objects.select_related("alert__rule")[:limit])


def alert_get(*, alert_id: int) -> Alert:
    """One alert with its rule (404 when there is none)."""
    return get_object_or_404(Alert.objects.select_related("rule"), pk=alert_id)


def guard_blocks_recent(*, limit: int) -> list[GuardBlock]:
    return list(GuardBlock.objects.all()[:limit])


def drills_recent(*, limit: int) -> list[DrDrill]:
    """The latest DR drill reports, newest first."""
    return list(DrDrill.objects.order_by("-started_at", "-id")[:limit])
