"""History: deltas of many processes add up, gauges per process, retention, queries."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from devtools.processes import start_celery_worker, wait_until_idle
from monitoring.models import MetricPoint, MetricSeries
from monitoring.selectors import Query, timeseries, window_value, window_values_by
from monitoring.services.history import (
    Delta,
    DeltaTracker,
    bucket_start,
    history_purge,
    history_write,
    series_id,
)
from wechat_core.metrics import SeriesValue, counter, gauge, histogram

pytestmark = pytest.mark.django_db

REQUESTS = counter("test_history_requests_total", "t", ["outcome"])
LATENCY = histogram("test_history_latency_seconds", "t", buckets=(0.1, 1.0))
OPEN = gauge("test_history_open", "t")


def value(
    family: str,
    kind: str,
    amount: float,
    *,
    part: str = "value",
    le: float | None = None,
    **labels: str,
) -> SeriesValue:
    return SeriesValue(family, kind, part, le, tuple(sorted(labels.items())), amount)  # type: ignore[arg-type]


def at(seconds_ago: float) -> dt.datetime:
    return timezone.now() - timedelta(seconds=seconds_ago)


def write(values: list[SeriesValue], ended: dt.datetime, instance: str = "a:1") -> None:
    tracker = DeltaTracker()
    history_write(deltas=tracker.deltas(values), ended=ended, instance=instance)


def test_history_write__two_processes_same_bucket__their_increases_add_up() -> None:
    # given: two processes that each counted requests in the same 5 s
    ended = at(30)
    write([value(REQUESTS.name, "counter", 3, outcome="2xx")], ended, "host:1")
    write([value(REQUESTS.name, "counter", 4, outcome="2xx")], ended, "host:2")
    # then: one point per resolution with the sum
    sid = series_id(family=REQUESTS.name, part="value", le=None, labels=(("outcome", "2xx"),))
    assert sorted(MetricPoint.objects.filter(series_id=sid).values_list("resolution", "value")) == [
        (5, 7.0),
        (60, 7.0),
    ]


def test_delta_tracker__second_snapshot__writes_only_the_increase_and_survives_reset() -> None:
    tracker = DeltaTracker()
    first = [value(REQUESTS.name, "counter", 5, outcome="2xx")]
    assert [d.value.value for d in tracker.deltas(first)] == [5]
    tracker.commit(first)
    second = [value(REQUESTS.name, "counter", 8, outcome="2xx")]
    assert [d.value.value for d in tracker.deltas(second)] == [3]
    tracker.commit(second)
    assert tracker.deltas(second) == []  # nothing new: nothing written
    restarted = [value(REQUESTS.name, "counter", 2, outcome="2xx")]
    assert [d.value.value for d in tracker.deltas(restarted)] == [2]


def test_history_write__failed_write_not_committed__is_written_by_the_next_flush() -> None:
    tracker = DeltaTracker()
    values = [value(REQUESTS.name, "counter", 5, outcome="2xx")]
    tracker.deltas(values)  # the write failed: no commit
    deltas = tracker.deltas(values)
    assert [d.value.value for d in deltas] == [5]


def test_gauges__per_process__are_summed_per_bucket_and_replaced_within_it() -> None:
    ended = at(30)
    history_write(
        deltas=[Delta(value(OPEN.name, "gauge", 5), replace=True)], ended=ended, instance="h:1"
    )
    history_write(
        deltas=[Delta(value(OPEN.name, "gauge", 7), replace=True)], ended=ended, instance="h:1"
    )
    history_write(
        deltas=[Delta(value(OPEN.name, "gauge", 2), replace=True)], ended=ended, instance="h:2"
    )
    result = window_value(query=Query(OPEN.name, "last", {}), since=at(60), until=at(0))
    assert result.value == 9  # 7 (h:1's latest) + 2


def test_window_value__ratio_and_quantile__from_the_written_history() -> None:
    ended = at(20)
    write(
        [
            value(REQUESTS.name, "counter", 90, outcome="2xx"),
            value(REQUESTS.name, "counter", 10, outcome="5xx"),
        ],
        ended,
    )
    write(
        [
            value(LATENCY.name, "histogram", 8, part="bucket", le=0.1),
            value(LATENCY.name, "histogram", 2, part="bucket", le=1.0),
            value(LATENCY.name, "histogram", 0, part="bucket", le=None),
        ],
        ended,
    )
    ratio = window_value(
        query=Query(REQUESTS.name, "ratio", {}, numerator={"outcome": "5xx"}),
        since=at(60),
        until=at(0),
    )
    p50 = window_value(query=Query(LATENCY.name, "p50", {}), since=at(60), until=at(0))
    assert (ratio.value, ratio.volume) == (0.1, 100)
    assert p50.value == pytest.approx(0.0625)
    excluded = window_value(
        query=Query(REQUESTS.name, "rate", {"outcome": "!5xx"}), since=at(60), until=at(0)
    )
    assert excluded.volume == 90


def test_window_values_by__each_label_value__equals_the_query_filtered_on_it() -> None:
    # given: requests of three outcomes, and latencies, in the last minute
    write(
        [
            value(REQUESTS.name, "counter", 90, outcome="2xx"),
            value(REQUESTS.name, "counter", 7, outcome="4xx"),
            value(REQUESTS.name, "counter", 3, outcome="5xx"),
        ],
        at(20),
    )
    write([value(REQUESTS.name, "counter", 10, outcome="2xx")], at(40))
    # when: one read per label, as the dashboards' tables do
    rates = window_values_by(
        query=Query(REQUESTS.name, "rate", {}), label="outcome", since=at(60), until=at(0)
    )
    # then: the same figures as one query per value
    assert sorted(rates) == ["2xx", "4xx", "5xx"]
    for outcome, found in rates.items():
        alone = window_value(
            query=Query(REQUESTS.name, "rate", {"outcome": outcome}), since=at(60), until=at(0)
        )
        assert found == alone
    assert rates["2xx"].volume == 100


def test_timeseries__steps__place_each_increase_in_its_bucket() -> None:
    write([value(REQUESTS.name, "counter", 10, outcome="2xx")], at(40))
    write([value(REQUESTS.name, "counter", 20, outcome="2xx")], at(10))
    series = timeseries(
        query=Query(REQUESTS.name, "increase", {}), since=at(60), until=at(0), step=5
    )
    assert sorted(v for v in series.values if v) == [10, 20]


def test_history_purge__past_retention__drops_points_and_orphan_series(settings) -> None:
    old = timezone.now() - timedelta(days=settings.MONITORING_RETENTION_DAYS + 1)
    write([value(REQUESTS.name, "counter", 1, outcome="old")], old)
    write([value(REQUESTS.name, "counter", 1, outcome="new")], at(10))
    history_purge()
    assert MetricPoint.objects.filter(start__lt=old + timedelta(minutes=2)).count() == 0
    assert {s.labels["outcome"] for s in MetricSeries.objects.filter(family=REQUESTS.name)} == {
        "new"
    }


def test_series_id__same_series__same_id_in_every_process_and_row_rewritten_after_loss() -> None:
    labels = (("outcome", "2xx"),)
    assert series_id(family="x", part="value", le=None, labels=labels) == series_id(
        family="x", part="value", le=None, labels=labels
    )
    write([value(REQUESTS.name, "counter", 1, outcome="2xx")], at(20))
    MetricSeries.objects.all().delete()  # e.g. truncated
    write([value(REQUESTS.name, "counter", 1, outcome="2xx")], at(10))
    assert MetricSeries.objects.filter(family=REQUESTS.name).count() == 1


def test_bucket_start__any_moment__aligns_to_the_resolution() -> None:
    moment = dt.datetime(2026, 1, 1, 10, 0, 37, 500, tzinfo=dt.UTC)
    assert bucket_start(moment, 5) == dt.datetime(2026, 1, 1, 10, 0, 35, tzinfo=dt.UTC)
    assert bucket_start(moment, 60) == dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_flusher__prefork_worker_busy_with_database_tasks__writes_every_flush(
    live_env: dict[str, str], live_log_dir: Path
) -> None:
    # given: a worker as the Procfile runs it (prefork), flushing every second;
    # Celery's Django fix-up closes a child's connection pool before and after
    # each of its tasks
    from accounts.tasks import expire_friend_requests

    queue = "history-test"
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue)  # nothing left from before
    env = live_env | {"MONITORING_FLUSH_SECONDS": "1"}
    worker = start_celery_worker(log_dir=live_log_dir, env=env, queues=queue, name="prefork",
                                 pool="prefork", concurrency=2)  # fmt: skip
    try:
        # when: it runs database tasks back to back for several flush periods
        results = [expire_friend_requests.apply_async(queue=queue) for _ in range(400)]
        for result in results:
            result.get(timeout=300)
        wait_until_idle(worker)
    finally:
        worker.stop()
    # then: its children's flushes (each running beside the tasks) all went through
    assert "could not write metric history" not in worker.log()
