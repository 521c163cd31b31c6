"""Metric primitives: every module declares its metrics with these, beside the code
that moves them (Synapse style), with full names and fixed label names.

    SENT = counter("messaging_messages_sent_total", "Messages sent.", ["kind"])
    SENT.inc("text")                       # label values in declaration order

What this adds to prometheus-client:

- **Bounded labels.** A label whose values come from clients (CLIENT_LABELS:
  client version, platform, websocket frame type) takes at most
  MONITORING_LABEL_VALUES_MAX distinct values per family in a process; later
  newcomers are counted under "other", so a bad client cannot explode the series
  count. Labels whose values come from our code (routes, modules, task names)
  are bounded by the code, with a safety cap of CODE_LABEL_VALUES_MAX.
  `client_version_label` folds versions to major.minor first.
- **Process labels.** Families declared with `process_labels=True` carry the
  `campus` and `datacenter` this process runs in (settings), filled in here.
- **A switch.** With MONITORING_ENABLED off, recording does nothing (to measure
  the instrumentation's cost side by side).
- **Snapshots** of this process's own values, which the flusher turns into
  history rows (monitoring.runtime, monitoring.services.history).

Several processes: with PROMETHEUS_MULTIPROC_DIR set (before prometheus-client
is first imported; settings read it from the environment), every process writes
its values to files there and /metrics sums them (monitoring.exposition).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram

OTHER = "other"
Kind = Literal["counter", "gauge", "histogram"]
PROCESS_LABELS = ("campus", "datacenter")
# Seconds: 1 ms to 30 s, enough resolution around our 2-100 ms requests.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
_VERSION = re.compile(r"^(\d{1,4})\.(\d{1,4})(?:\.\d{1,6})?(?:[-+][0-9A-Za-z.-]{0,40})?$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CLIENT_LABELS = frozenset({"client_version", "platform", "frame"})
CODE_LABEL_VALUES_MAX = 2000


@functools.lru_cache(maxsize=512)  # every request and frame asks; versions are few
def client_version_label(version: str | None) -> str:
    """A client version as a bounded label: "major.minor", or "other" if unreadable."""
    match = _VERSION.match(version or "")
    return f"{int(match[1])}.{int(match[2])}" if match else OTHER


@dataclass(frozen=True, slots=True)
class SeriesValue:
    """One scalar of this process's state: a counter's total, a gauge's value, a
    histogram's count, sum or one (non-cumulative) bucket."""

    family: str
    kind: Kind
    part: Literal["value", "count", "sum", "bucket"]
    le: float | None  # a bucket's upper bound; None for +Inf and for other parts
    labels: tuple[tuple[str, str], ...]
    value: float


class Family:
    """A declared metric. `inc`/`observe`/`set` take label values in order."""

    def __init__(
        self,
        kind: Kind,
        name: str,
        documentation: str,
        labels: Sequence[str],
        *,
        process_labels: bool,
        buckets: Sequence[float] | None = None,
        gauge_mode: str = "livesum",
    ) -> None:
        if not _NAME.match(name):
            raise ValueError(f"bad metric name {name!r}")
        self.kind: Kind = kind
        self.name = name
        self.documentation = documentation
        self.own_labels = tuple(labels)
        self.process_labels = process_labels
        self.label_names = self.own_labels + (PROCESS_LABELS if process_labels else ())
        self.gauge_mode = gauge_mode
        self.buckets = tuple(buckets or LATENCY_BUCKETS)
        self._seen: list[set[str]] = [set() for _ in self.own_labels]
        self._client = [label in CLIENT_LABELS for label in self.own_labels]
        self._children: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()
        names = list(self.label_names)
        if kind == "counter":
            self.metric: Any = Counter(name, documentation, names)
        elif kind == "histogram":
            self.metric = Histogram(name, documentation, names, buckets=self.buckets)
        else:
            self.metric = Gauge(name, documentation, names, multiprocess_mode=gauge_mode)  # type: ignore[arg-type]
        FAMILIES[name] = self

    def child(self, values: Sequence[str]) -> Any:
        """The prometheus child for these label values (bounded, cached)."""
        key = tuple(values)
        found = self._children.get(key)
        if found is not None:
            return found
        with self._lock:
            guarded = tuple(self._bound(index, str(value)) for index, value in enumerate(key))
            if self.process_labels:
                guarded += (settings.CAMPUS, settings.DATACENTER)
            found = self.metric.labels(*guarded) if self.label_names else self.metric
            if len(self._children) < 100_000:
                self._children[key] = found
            return found

    def bounded(self, label: str, value: str) -> str:
        """`value` as this family records it for `label` (itself, or "other" once the
        label has all the values it may take), for callers that reuse the label."""
        index = self.own_labels.index(label)
        if value in self._seen[index]:
            return value
        with self._lock:
            return self._bound(index, value)

    def _bound(self, index: int, value: str) -> str:
        seen = self._seen[index]
        if value in seen:
            return value
        limit = (
            settings.MONITORING_LABEL_VALUES_MAX if self._client[index] else CODE_LABEL_VALUES_MAX
        )
        if len(seen) >= limit or len(value) > 120:
            return OTHER
        seen.add(value)
        return value

    def inc(self, *values: str, amount: float = 1.0) -> None:
        if settings.MONITORING_ENABLED:
            self.child(values).inc(amount)

    def dec(self, *values: str, amount: float = 1.0) -> None:
        if settings.MONITORING_ENABLED:
            self.child(values).dec(amount)

    def set(self, *values: str, value: float) -> None:
        if settings.MONITORING_ENABLED:
            self.child(values).set(value)

    def observe(self, *values: str, value: float) -> None:
        if settings.MONITORING_ENABLED:
            self.child(values).observe(value)

    def snapshot(self) -> list[SeriesValue]:
        """This process's current values, as scalars."""
        out: list[SeriesValue] = []
        for metric in self.metric.collect():
            for sample in metric.samples:
                labels = {k: v for k, v in sample.labels.items() if k != "le"}
                key = tuple(sorted(labels.items()))
                if sample.name.endswith("_created"):
                    continue
                if self.kind != "histogram":
                    out.append(SeriesValue(self.name, self.kind, "value", None, key, sample.value))
                elif sample.name.endswith("_count"):
                    out.append(
                        SeriesValue(self.name, "histogram", "count", None, key, sample.value)
                    )
                elif sample.name.endswith("_sum"):
                    out.append(SeriesValue(self.name, "histogram", "sum", None, key, sample.value))
                else:
                    le = float(sample.labels["le"])
                    bound = None if le == float("inf") else le
                    out.append(
                        SeriesValue(self.name, "histogram", "bucket", bound, key, sample.value)
                    )
        return _decumulate(out)


def _decumulate(values: list[SeriesValue]) -> list[SeriesValue]:
    """Prometheus buckets are cumulative; history stores each bucket's own count."""
    previous: dict[tuple[tuple[str, str], ...], float] = {}
    out = []
    buckets = sorted(
        (v for v in values if v.part == "bucket"),
        key=lambda v: (v.labels, float("inf") if v.le is None else v.le),
    )
    for value in buckets:
        below = previous.get(value.labels, 0.0)
        previous[value.labels] = value.value
        out.append(
            SeriesValue(
                value.family, value.kind, "bucket", value.le, value.labels, value.value - below
            )
        )
    return [v for v in values if v.part != "bucket"] + out


FAMILIES: dict[str, Family] = {}


def counter(
    name: str, documentation: str, labels: Sequence[str] = (), *, process_labels: bool = False
) -> Family:
    if not name.endswith("_total"):
        raise ValueError("counter names end in _total")
    return Family("counter", name, documentation, labels, process_labels=process_labels)


def histogram(
    name: str,
    documentation: str,
    labels: Sequence[str] = (),
    *,
    buckets: Sequence[float] | None = None,
    process_labels: bool = False,
) -> Family:
    return Family(
        "histogram", name, documentation, labels, buckets=buckets, process_labels=process_labels
    )


def gauge(
    name: str,
    documentation: str,
    labels: Sequence[str] = (),
    *,
    mode: Literal["livesum", "mostrecent"] = "livesum",
    process_labels: bool = False,
) -> Family:
    """`livesum`: each process holds its part (open websockets), the total is their sum.
    `mostrecent`: one value for the whole deployment, whoever measured it last."""
    return Family(
        "gauge", name, documentation, labels, process_labels=process_labels, gauge_mode=mode
    )


def family(name: str) -> Family | None:
    return FAMILIES.get(name)


def snapshot(families: Iterable[Family] | None = None) -> list[SeriesValue]:
    """Every declared family's values in this process."""
    values: list[SeriesValue] = []
    for declared in list(FAMILIES.values()) if families is None else families:
        values.extend(declared.snapshot())
    return values


def sample_value(name: str, **labels: str) -> float:
    """The sum, over this process's series of `name` whose labels include `labels`,
    of their values (counters and gauges; a histogram's count). Tests and
    admin pages use it; it reads only this process."""
    declared = FAMILIES[name]
    total = 0.0
    for value in declared.snapshot():
        if value.part not in ("value", "count"):
            continue
        present = dict(value.labels)
        if all(present.get(k) == v for k, v in labels.items()):
            total += value.value
    return total
