"""Approving an activity generates every prize ahead, signed and sliced, and funds
its budget with exactly what they add up to."""

from __future__ import annotations

import pytest
from django.db.models import Sum
from hypothesis import given
from hypothesis import strategies as st

from shake.exceptions import AlreadyApproved, PlanInvalid
from shake.models import Prize, PrizeState
from shake.services.activities import PrizePlan, RoundPlan, _amounts, activity_approve
from shake.signing import prize_sign
from tests.shake.conftest import SPONSORS, approved_round
from wallet.models import LedgerAccount, LedgerTransaction, TransactionKind

pytestmark = pytest.mark.django_db


def test_approval__every_prize_generated_signed_and_in_one_slice() -> None:
    round_ = approved_round(prizes_each=40, slices=4)
    prizes = list(Prize.objects.filter(round=round_))
    assert len(prizes) == 3 * 40 + 2
    assert {p.state for p in prizes} == {PrizeState.POOL}
    for prize in prizes:
        assert prize.signature == prize_sign(
            prize_id=prize.pk,
            round_id=round_.pk,
            amount=prize.amount,
            kind=prize.kind,
            sponsor_id=prize.sponsor_id,
            extra_shares=prize.extra_shares,
            extra_amount=prize.extra_amount,
        )
    sizes = [sum(1 for p in prizes if p.slice == n) for n in range(4)]
    assert sorted(sizes) == [30, 30, 31, 31]  # disjoint and even


def test_approval__budget_funded_with_the_sum_of_the_prizes_and_their_extra_shares() -> None:
    round_ = approved_round(prizes_each=10)
    activity = round_.activity
    activity.refresh_from_db()
    sums = Prize.objects.filter(round=round_).aggregate(
        amounts=Sum("amount"), extras=Sum("extra_amount")
    )
    total = sums["amounts"] + sums["extras"]
    assert sums["amounts"] == 10 * 88 + 10 * 100 + 10 * 66 + 1000
    assert sums["extras"] == 2 * 500  # two sponsor packets, 5 shares worth 500 fen each
    assert activity.budget_fen == total
    budget = LedgerAccount.objects.get(reference=activity.budget_reference)
    assert budget.balance == total
    assert LedgerTransaction.objects.filter(kind=TransactionKind.BUDGET_FUND).count() == 1


def test_approval__twice__refused() -> None:
    round_ = approved_round(prizes_each=2)
    with pytest.raises(AlreadyApproved):
        activity_approve(activity_id=round_.activity_id)


def test_plan__more_prizes_than_fen__refused() -> None:
    from django.utils import timezone

    from shake.services.activities import activity_create

    with pytest.raises(PlanInvalid):
        activity_create(
            name="Too thin",
            sponsors=SPONSORS,
            rounds=[
                RoundPlan(
                    title="R",
                    planned_start=timezone.now(),
                    duration_seconds=60,
                    issue_rate=10,
                    prizes=(PrizePlan(sponsor=0, count=10, total=9),),
                )
            ],
        )


@given(count=st.integers(1, 200), extra=st.integers(0, 10_000))
def test_cash_split__sums_exactly__at_least_one_fen_each(count: int, extra: int) -> None:
    import random

    amounts = _amounts(PrizePlan(sponsor=0, count=count, total=count + extra), random.Random(1))
    assert len(amounts) == count
    assert sum(amounts) == count + extra
    assert min(amounts) >= 1


@pytest.mark.parametrize(
    ("stagger", "duration"),
    [(30, 600), (301, 3600), (150, 600)],  # under 1 min; over 5; the 5th group after the end
)
def test_plan__stagger_outside_1_to_5_minutes_or_past_the_end__refused(
    stagger: int, duration: int
) -> None:
    from django.utils import timezone

    from shake.services.activities import activity_create

    with pytest.raises(PlanInvalid):
        activity_create(
            name="Staggered",
            sponsors=SPONSORS,
            rounds=[
                RoundPlan(
                    title="R",
                    planned_start=timezone.now(),
                    duration_seconds=duration,
                    issue_rate=10,
                    stagger_seconds=stagger,
                    prizes=(PrizePlan(sponsor=0, count=1, total=9),),
                )
            ],
        )
