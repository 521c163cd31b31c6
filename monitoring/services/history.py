"""Writing metric history: each process's deltas, added into shared points.

A process's flusher (monitoring.runtime) takes a snapshot of its own metrics every
MONITORING_FLUSH_SECONDS, subtracts the previous one (`DeltaTracker`) and calls
`history_write`. Counters and histograms are added into the points of the bucket
that just ended, at both resolutions, with one `INSERT … ON CONFLICT DO UPDATE
SET value = value + excluded.value`: many processes, on many hosts, add into the
same rows and the database sums them. Rows are sorted so that concurrent flushes
lock them in one order (no deadlocks). Gauges carry their process in an
`instance` label and replace their value (monitoring.models.history).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from monitoring.models import (
    Alert,
    AlertEvent,
    AlertState,
    GuardBlock,
    MetricPoint,
    MetricSeries,
)
from wechat_core.metrics import FAMILIES, SeriesValue

MINUTE = 60
_CHUNK = 400
Labels = tuple[tuple[str, str], ...]


def series_id(*, family: str, part: str, le: float | None, labels: Labels) -> int:
    """The deterministic id of a series (the same in every process)."""
    text = json.dumps([family, part, le, list(labels)], separators=(",", ":"))
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)


def bucket_start(moment: dt.datetime, resolution: int) -> dt.datetime:
    seconds = int(moment.timestamp()) // resolution * resolution
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


@dataclass(frozen=True, slots=True)
class Delta:
    value: SeriesValue  # its `value` is the increase (counters) or the current value (gauges)
    replace: bool


class DeltaTracker:
    """What changed in this process since the last flush."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str, float | None, Labels], float] = {}

    def deltas(self, values: Sequence[SeriesValue]) -> list[Delta]:
        """The changes since the last `commit` (which a successful write makes)."""
        out = []
        for value in values:
            before = self._last.get((value.family, value.part, value.le, value.labels))
            if value.kind == "gauge":
                if before is not None or value.value:
                    out.append(Delta(value, replace=True))
                continue
            increase = value.value - (before or 0.0)
            if increase < 0:  # the process's values were reset
                increase = value.value
            if increase:
                out.append(Delta(_with(value, increase), replace=False))
        return out

    def commit(self, values: Sequence[SeriesValue]) -> None:
        for value in values:
            self._last[(value.family, value.part, value.le, value.labels)] = value.value

    def forget(self) -> None:
        self._last.clear()


def _with(value: SeriesValue, new: float) -> SeriesValue:
    return SeriesValue(value.family, value.kind, value.part, value.le, value.labels, new)


def _per_instance(value: SeriesValue, instance: str) -> Labels:
    declared = FAMILIES.get(value.family)
    if declared is not None and declared.gauge_mode == "livesum":
        return tuple(sorted((*value.labels, ("instance", instance))))
    return value.labels


def history_write(*, deltas: Sequence[Delta], ended: dt.datetime, instance: str) -> int:
    """Add these deltas to the points of the buckets that contain `ended - 1 s`
    (the interval the snapshot covers just ended). Returns the rows written."""
    if not deltas:
        return 0
    moment = ended - timedelta(seconds=1)
    fine, minute = settings.MONITORING_FLUSH_SECONDS, MINUTE
    starts = {fine: bucket_start(moment, fine), minute: bucket_start(moment, minute)}
    series: dict[int, MetricSeries] = {}
    added: dict[tuple[int, int, dt.datetime], float] = {}
    replaced: dict[tuple[int, int, dt.datetime], float] = {}
    for delta in deltas:
        value = delta.value
        labels = _per_instance(value, instance) if delta.replace else value.labels
        sid = series_id(family=value.family, part=value.part, le=value.le, labels=labels)
        series[sid] = MetricSeries(
            id=sid,
            family=value.family,
            kind=value.kind,
            part=value.part,
            le=value.le,
            labels=dict(labels),
        )
        target = replaced if delta.replace else added
        for resolution, start in starts.items():
            key = (resolution, sid, start)
            target[key] = target.get(key, 0.0) + value.value if not delta.replace else value.value
    # One transaction: a purge never sees a new series without its points (and
    # drops it as an orphan) while the points are being written.
    with transaction.atomic():
        MetricSeries.objects.bulk_create(
            [series[sid] for sid in sorted(series)], ignore_conflicts=True, batch_size=_CHUNK
        )
        _upsert(added, additive=True)
        _upsert(replaced, additive=False)
    return len(added) + len(replaced)


def _upsert(rows: dict[tuple[int, int, dt.datetime], float], *, additive: bool) -> None:
    table = MetricPoint._meta.db_table
    adapt = connection.ops.adapt_datetimefield_value
    update = f"{table}.value + excluded.value" if additive else "excluded.value"
    ordered = sorted(rows.items())  # one lock order for every process
    for index in range(0, len(ordered), _CHUNK):
        chunk = ordered[index : index + _CHUNK]
        placeholders = ", ".join(["(%s, %s, %s, %s)"] * len(chunk))
        params: list[Any] = []
        for (resolution, sid, start), value in chunk:
            params += [sid, resolution, adapt(start), value]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (series_id, resolution, start, value) "  # noqa: S608 - ours
                f"VALUES {placeholders} "
                f"ON CONFLICT (resolution, series_id, start) DO UPDATE SET value = {update}",
                params,
            )


def gauge_record(*, family: str, labels: dict[str, str], value: float, at: dt.datetime) -> None:
    """Write one deployment-wide gauge value (e.g. a queue's length) straight into history."""
    declared = FAMILIES[family]
    key = tuple(sorted(labels.items()))
    sample = SeriesValue(declared.name, "gauge", "value", None, key, value)
    history_write(
        deltas=[Delta(sample, replace=True)], ended=at + timedelta(seconds=1), instance=""
    )


def history_purge(*, now: dt.datetime | None = None) -> int:
    """Drop points, alert history and guard blocks past their retention."""
    now = now or timezone.now()
    fine_cutoff = now - timedelta(seconds=settings.MONITORING_FINE_RETENTION_SECONDS)
    minute_cutoff = now - timedelta(days=settings.MONITORING_RETENTION_DAYS)
    deleted, _ = (
        MetricPoint.objects.filter(
            resolution=settings.MONITORING_FLUSH_SECONDS, start__lt=fine_cutoff
        )
        .exclude(resolution=MINUTE)
        .delete()
    )
    old, _ = MetricPoint.objects.filter(resolution=MINUTE, start__lt=minute_cutoff).delete()
    # Per series, an index probe (resolution, series_id) rather than a scan of
    # every point: the points table holds weeks of minutes for every series.
    resolutions = [settings.MONITORING_FLUSH_SECONDS, MINUTE]
    MetricSeries.objects.exclude(
        Exists(MetricPoint.objects.filter(resolution__in=resolutions, series_id=OuterRef("pk")))
    ).delete()
    history_cutoff = now - timedelta(days=settings.MONITORING_ALERT_HISTORY_DAYS)
    AlertEvent.objects.filter(at__lt=history_cutoff).delete()
    Alert.objects.filter(
        state__in=[AlertState.RESOLVED, AlertState.CANCELLED], ended_at__lt=history_cutoff
    ).delete()
    GuardBlock.objects.filter(until__lt=minute_cutoff).delete()
    return int(deleted + old)
