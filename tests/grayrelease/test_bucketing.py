"""Sticky percentage bucketing (grayrelease.bucketing): distribution, monotonicity,
stickiness across processes, independence between features."""

from __future__ import annotations

import os
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from devtools.processes import ROOT
from grayrelease.bucketing import BASIS_POINTS, bucket, in_rollout

salts = st.text(min_size=1, max_size=32)
user_ids = st.integers(min_value=1, max_value=2**63 - 1)
percentages = st.integers(min_value=0, max_value=BASIS_POINTS)
# Salts as the service makes them (secrets.token_hex(8)) and two hand-typed ones.
REALISTIC_SALTS = ["3f9c2a7b1d8e4f60", "a04be51c9d7f2e83", "0000000000000000", "web.chat_search"]


def test_bucket__10000_users_at_5_percent__hold_between_4_5_and_5_5_percent() -> None:
    for salt in REALISTIC_SALTS:
        # given: users 1..10000, as ids are handed out
        # when
        inside = sum(
            in_rollout(salt=salt, subject_id=user, percentage_bp=500) for user in range(1, 10_001)
        )
        # then: 5 % ± 0.5 %
        assert 450 <= inside <= 550, (salt, inside)


def test_bucket__sequential_users__spread_evenly_over_the_buckets() -> None:
    # given: 100,000 sequential users in 20 bands of 5 %
    counts = [0] * 20
    for user in range(1, 100_001):
        counts[bucket(salt="3f9c2a7b1d8e4f60", subject_id=user) * 20 // BASIS_POINTS] += 1
    # then: a chi-square with 19 degrees of freedom below its 99.9th percentile (43.8)
    expected = 100_000 / 20
    chi_square = sum((count - expected) ** 2 / expected for count in counts)
    assert chi_square < 43.8, counts


def test_bucket__two_features__pick_unrelated_first_percents() -> None:
    # given: the first 10 % of two features over 100,000 users
    first = {u for u in range(1, 100_001) if in_rollout(salt="a", subject_id=u, percentage_bp=1000)}
    second = {
        u for u in range(1, 100_001) if in_rollout(salt="b", subject_id=u, percentage_bp=1000)
    }
    # then: they share about 10 % of their users, as independent draws would (1,000 ± 3 sd)
    assert 900 <= len(first & second) <= 1100


@given(salt=salts, user=user_ids)
def test_bucket__any_salt_and_user__is_a_basis_point_and_always_the_same(
    salt: str, user: int
) -> None:
    value = bucket(salt=salt, subject_id=user)
    assert 0 <= value < BASIS_POINTS
    assert bucket(salt=salt, subject_id=user) == value


@given(salt=salts, user=user_ids, low=percentages, high=percentages)
def test_in_rollout__raising_the_percentage__never_removes_a_user(
    salt: str, user: int, low: int, high: int
) -> None:
    low, high = sorted((low, high))
    if in_rollout(salt=salt, subject_id=user, percentage_bp=low):
        assert in_rollout(salt=salt, subject_id=user, percentage_bp=high)


@given(
    salt=salts,
    users=st.sets(st.integers(1, 10**9), min_size=1, max_size=300),
    steps=st.lists(percentages, min_size=2, max_size=6),
)
def test_in_rollout__lowering__removes_the_last_added_first(
    salt: str, users: set[int], steps: list[int]
) -> None:
    # given: a rollout raised step by step, noting when each user came in
    raised = sorted(steps)
    joined: dict[int, int] = {}
    for percentage in raised:
        for user in users:
            if in_rollout(salt=salt, subject_id=user, percentage_bp=percentage):
                joined.setdefault(user, percentage)
    # when: it is lowered back to each earlier step
    for percentage in reversed(raised):
        kept = {u for u in users if in_rollout(salt=salt, subject_id=u, percentage_bp=percentage)}
        # then: exactly the users who had joined by that step remain
        assert kept == {u for u, at in joined.items() if at <= percentage}


def test_in_rollout__0_and_100_percent__are_nobody_and_everybody() -> None:
    assert not any(in_rollout(salt="s", subject_id=u, percentage_bp=0) for u in range(1, 2000))
    assert all(in_rollout(salt="s", subject_id=u, percentage_bp=10_000) for u in range(1, 2000))


def test_bucket__another_process_with_another_hash_seed__gives_the_same_buckets() -> None:
    # given: buckets computed here
    here = [bucket(salt="3f9c2a7b1d8e4f60", subject_id=u) for u in range(1, 200)]
    # when: a fresh interpreter with different string hashing computes them
    code = (
        "from grayrelease.bucketing import bucket; "
        "print([bucket(salt='3f9c2a7b1d8e4f60', subject_id=u) for u in range(1, 200)])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # then
    assert result.stdout.strip() == str(here)
