"""Metric primitives: bounded labels, client versions, snapshots, quantiles."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from wechat_core.metrics import OTHER, client_version_label, counter, histogram
from wechat_core.quantiles import histogram_quantile, share_above


def test_client_version_label__semantic_versions__fold_to_major_minor() -> None:
    assert client_version_label("3.0.12") == "3.0"
    assert client_version_label("10.4") == "10.4"
    assert client_version_label("2.1.0-beta.1") == "2.1"


@pytest.mark.parametrize("junk", ["", None, "latest", "3", "1.2.3.4.5", "x" * 300, "3.0; DROP"])
def test_client_version_label__unreadable__is_other(junk: str | None) -> None:
    assert client_version_label(junk) == OTHER


_families = iter(range(10_000))


@hsettings(max_examples=30, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=200))
def test_family__any_label_values__never_more_than_the_limit_plus_other(values: list[str]) -> None:
    # given: a family and a bad client sending arbitrary values
    family = counter(f"test_bounded_{next(_families)}_total", "t", ["client_version"])
    # when
    for value in values:
        family.inc(value)
    # then: at most MONITORING_LABEL_VALUES_MAX distinct values, the rest counted as other
    seen = {dict(v.labels)["client_version"] for v in family.snapshot()}
    from django.conf import settings

    assert len(seen - {OTHER}) <= settings.MONITORING_LABEL_VALUES_MAX
    assert sum(v.value for v in family.snapshot()) == len(values)


def test_family__process_labels__carry_this_process_campus_and_datacenter(settings) -> None:
    family = counter("test_placed_total", "t", ["what"], process_labels=True)
    family.inc("x")
    (value,) = family.snapshot()
    assert dict(value.labels) == {
        "what": "x",
        "campus": settings.CAMPUS,
        "datacenter": settings.DATACENTER,
    }


def test_family__monitoring_disabled__records_nothing(settings) -> None:
    settings.MONITORING_ENABLED = False
    family = counter("test_disabled_total", "t", ["what"])
    family.inc("x")
    assert family.snapshot() == []


def test_histogram_snapshot__buckets__are_stored_per_bucket_not_cumulative() -> None:
    family = histogram("test_latency_seconds", "t", buckets=(1.0, 2.0))
    for value in (0.5, 1.5, 1.7, 9.0):
        family.observe(value=value)
    parts = {(v.part, v.le): v.value for v in family.snapshot()}
    assert parts[("bucket", 1.0)] == 1
    assert parts[("bucket", 2.0)] == 2
    assert parts[("bucket", None)] == 1
    assert parts[("count", None)] == 4


# --- Quantiles -----------------------------------------------------------------------------

buckets_strategy = st.dictionaries(
    st.sampled_from([0.01, 0.1, 0.5, 1.0, 2.0, 5.0, None]),
    st.integers(min_value=0, max_value=1000).map(float),
    min_size=1,
)


@given(buckets_strategy, st.floats(0, 1), st.floats(0, 1))
def test_histogram_quantile__any_buckets__is_monotonic_in_q_and_within_the_bounds(
    buckets, q1, q2
) -> None:
    low, high = sorted((q1, q2))
    a, b = histogram_quantile(low, buckets), histogram_quantile(high, buckets)
    if sum(buckets.values()) == 0:
        assert a is None
        assert b is None
        return
    finite = [le for le in buckets if le is not None]
    if not finite:  # only +Inf: no bound to answer with
        assert b is None
        return
    assert a is not None
    assert b is not None
    assert a <= b + 1e-9
    assert 0 <= b <= max(finite)


def test_histogram_quantile__known_buckets__interpolates_like_prometheus() -> None:
    # 10 observations in (0, 1], 10 in (1, 2]: the median is 1, p75 1.5
    assert histogram_quantile(0.5, {1.0: 10, 2.0: 10, None: 0}) == 1.0
    assert histogram_quantile(0.75, {1.0: 10, 2.0: 10, None: 0}) == 1.5
    # a rank in +Inf answers the highest finite bound
    assert histogram_quantile(0.99, {1.0: 1, None: 10}) == 1.0


def test_share_above__bound__counts_the_buckets_above_it() -> None:
    assert share_above(5.0, {1.0: 6, 5.0: 2, 10.0: 1, None: 1}) == 0.2
    assert share_above(5.0, {}) is None
