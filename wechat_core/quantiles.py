"""Quantiles from histogram buckets, as Prometheus's histogram_quantile computes them.

Buckets are summed over processes first (they add up; quantiles do not), then the
rank q·N is located and interpolated linearly inside its bucket, the lowest
bucket starting at 0. A rank in the +Inf bucket answers the highest finite bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def histogram_quantile(q: float, buckets: Mapping[float | None, float]) -> float | None:
    """`buckets`: upper bound (None for +Inf) → count in that bucket (not cumulative).
    None when there are no observations."""
    if not 0 <= q <= 1:
        raise ValueError("q must be within [0, 1]")
    bounds = sorted((math.inf if le is None else le, max(0.0, n)) for le, n in buckets.items())
    total = sum(n for _, n in bounds)
    if total <= 0:
        return None
    rank = q * total
    cumulative, lower = 0.0, 0.0
    finite = [le for le, _ in bounds if le != math.inf]
    for upper, count in bounds:
        if count > 0 and cumulative + count >= rank:
            if upper == math.inf:
                return finite[-1] if finite else None
            if lower >= upper:
                return upper
            return lower + (upper - lower) * (rank - cumulative) / count
        cumulative += count
        lower = upper if upper != math.inf else lower
    return finite[-1] if finite else None


def share_above(bound: float, buckets: Mapping[float | None, float]) -> float | None:
    """The share of observations in buckets above `bound` (a bucket bound)."""
    total = sum(max(0.0, n) for n in buckets.values())
    if total <= 0:
        return None
    above = sum(n for le, n in buckets.items() if le is None or le > bound)
    return above / total
