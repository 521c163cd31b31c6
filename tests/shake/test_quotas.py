"""Lottery quotas (seed 003, docs/shake.md "Quotas"), with two engines in this process
sharing Redis: a class over its per-second quota is skipped and the draw falls back
to other prizes; quotas hold across processes (the conditional atomic counter); a
new version is loaded whole; refusing unknown classes."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import time_machine
from django.test import override_settings

from shake.access import Engine
from shake.exceptions import PlanInvalid
from shake.models import Round
from shake.quotas import class_of
from shake.services.quotas import quota_set
from tests.factories import make_user
from tests.shake.conftest import approved_round

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_registry() -> Iterator[None]:
    with override_settings(SHAKE_REGISTRY=f"shake-test-{uuid.uuid4().hex[:8]}"):
        yield


def engines(count: int) -> list[Engine]:
    result = [Engine() for _ in range(count)]
    for engine in result * 2:
        engine.step(force=True)
    return result


def shake_users(pool: list[Engine], users: list[int]) -> list[tuple[int, str]]:
    """Each user shakes once, alternating engines: (second, class) of each win."""
    wins: list[tuple[int, str]] = []
    for index, user in enumerate(users):
        answer = pool[index % len(pool)].shake(user_id=user, record_token=None)
        if answer.win is not None:
            prize = answer.win.prize
            wins.append((int(time.time()), class_of(prize.kind, prize.sponsor_id)))
    return wins


def sponsor_class(round_: Round) -> str:
    sponsor = round_.prizes.filter(kind="sponsor").values_list("sponsor_id", flat=True)[0]
    return f"sponsor:{sponsor}"


def test_cash_over_quota__the_draw_falls_back_to_sponsor_packets() -> None:
    round_ = approved_round(rate=10_000, prizes_each=60, slices=2)
    quota_set(round_id=round_.pk, per_second={"cash": 3}, actor=None)
    pool = engines(2)
    users = [make_user().pk for _ in range(40)]

    # All in one second of the clock the quota counts by: stamped after each shake,
    # a draw at x.999 was counted in second x+1 beside that second's own (4 > 3).
    with time_machine.travel(time.time(), tick=False):
        wins = shake_users(pool, users)

    cash_per_second = Counter(second for second, kind in wins if kind == "cash")
    assert cash_per_second
    assert max(cash_per_second.values()) <= 3, cash_per_second
    # Both sponsor packets were won although cash packets came first in the queues.
    assert sum(1 for _, kind in wins if kind == sponsor_class(round_)) == 2


def test_every_class_over_quota__nothing_is_issued() -> None:
    round_ = approved_round(rate=10_000, prizes_each=20, slices=2)
    quota_set(round_id=round_.pk, per_second={"cash": 0, sponsor_class(round_): 0}, actor=None)
    pool = engines(2)

    wins = shake_users(pool, [make_user().pk for _ in range(10)])

    assert wins == []


def test_a_new_version_is_loaded_whole() -> None:
    round_ = approved_round(rate=10_000, prizes_each=20, slices=2)
    first = quota_set(round_id=round_.pk, per_second={"cash": 0}, actor=None)
    [engine] = engines(1)
    assert engine.rounds[round_.pk].quotas.version == first.pk

    second = quota_set(round_id=round_.pk, per_second={}, actor=None)
    engine.step(force=True)

    table = engine.rounds[round_.pk].quotas
    assert table.version == second.pk
    assert table.limit("cash") is None
    assert engine.shake(user_id=make_user().pk, record_token=None).win is not None


def test_without_redis_each_process_takes_its_share_of_the_quota() -> None:
    round_ = approved_round(rate=10_000, prizes_each=60, slices=2)
    quota_set(round_id=round_.pk, per_second={"cash": 4, sponsor_class(round_): 0}, actor=None)
    pool = engines(2)
    for engine in pool:
        engine._redis = None  # the check's connection is down: no shared counter
        engine.live_processes = 2

    users = [make_user().pk for _ in range(40)]
    with time_machine.travel(time.time(), tick=False):  # one second (see above)
        wins = shake_users(pool, users)

    per_second = Counter(second for second, _ in wins)
    assert per_second
    assert max(per_second.values()) <= 4, per_second


def test_unknown_classes_and_bad_quotas_are_refused() -> None:
    round_ = approved_round()
    with pytest.raises(PlanInvalid):
        quota_set(round_id=round_.pk, per_second={"coupon:1": 5}, actor=None)
    with pytest.raises(PlanInvalid):
        quota_set(round_id=round_.pk, per_second={"cash": -1}, actor=None)
