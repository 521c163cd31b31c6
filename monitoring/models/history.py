"""Metric history in our own database: scalar series and their points.

A series is one scalar of one metric family with one set of label values: a
counter, a gauge, or one part of a histogram (its count, its sum, or one bucket,
stored non-cumulatively so that buckets of many processes add up). Its id is a
deterministic 63-bit hash of what it is, so every process computes the same id
without asking, and a row that disappeared (retention, a test's truncation) is
simply written again by the next flush.

Points are per resolution: MONITORING_FLUSH_SECONDS ("fine", kept for
MONITORING_FINE_RETENTION_SECONDS) and 60 s (kept MONITORING_RETENTION_DAYS).
Counters and histograms hold the increase during the bucket, summed over every
process that wrote to it; gauges hold the last value each process reported
(processes are told apart by an `instance` label) and are summed when read.
There is deliberately no foreign key from points to series: each flush
statement then locks one table only, so flushes never deadlock with each other
or with a TRUNCATE.
"""

from __future__ import annotations

from django.db import models


class MetricSeries(models.Model):
    id = models.BigIntegerField(primary_key=True)
    family = models.CharField(max_length=120)
    kind = models.CharField(max_length=10)  # counter | gauge | histogram
    part = models.CharField(max_length=8)  # value | count | sum | bucket
    le = models.FloatField(null=True, blank=True)  # a bucket's bound; NULL is +Inf
    labels = models.JSONField(default=dict)

    class Meta:
        verbose_name_plural = "metric series"
        indexes = [models.Index(fields=["family", "part"], name="series_by_family")]

    def __str__(self) -> str:
        return f"{self.family}{self.labels}"


class MetricPoint(models.Model):
    series_id = models.BigIntegerField()
    resolution = models.PositiveIntegerField()  # seconds
    start = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["resolution", "series_id", "start"], name="point_unique"
            )
        ]
        indexes = [models.Index(fields=["resolution", "start"], name="point_by_time")]

    def __str__(self) -> str:
        return f"{self.series_id}@{self.start}/{self.resolution}s={self.value}"
