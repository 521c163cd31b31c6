"""Planning activities and approving them (seed 004's "seed files").

Approval generates every prize of every round ahead, signs each, splits them into
disjoint slices (one per access process slot) and funds the activity's budget
account in the ledger with the cash they add up to, all in one transaction: an
approved activity always has exactly the money its prizes promise.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from shake.exceptions import AlreadyApproved, PlanInvalid
from shake.models import Activity, Business, Prize, PrizeKind, Round, Sponsor
from shake.signing import prize_sign
from wallet.models import TransactionKind
from wallet.services.ledger import budget_account_open, clearing_account_open, ledger_transfer
from wallet.types import Leg


@dataclass(frozen=True, slots=True)
class SponsorPlan:
    name: str
    logo_url: str
    background: str = ""


@dataclass(frozen=True, slots=True)
class PrizePlan:
    """`count` prizes of one sponsor: cash packets splitting `total` (fen) at random
    (at least 1 fen each), or sponsor packets of `total // count` each with
    `extra_shares` to pass on, worth `extra_total` fen (each prize's shares together),
    which its winner sends as a chat red packet (seed 004's 分裂红包), or coupons of
    `business` (its id) named `coupon` of face value `total // count` each, which
    the business delivers (not paid from the budget)."""

    sponsor: int  # index into the activity's sponsors
    count: int
    total: int
    kind: str = PrizeKind.CASH
    extra_shares: int = 0
    extra_total: int = 0
    business: int | None = None
    coupon: str = ""


@dataclass(frozen=True, slots=True)
class RoundPlan:
    title: str
    planned_start: datetime
    duration_seconds: int
    issue_rate: int
    prizes: tuple[PrizePlan, ...]
    latest_start: datetime | None = None
    per_user_cap: int = 3
    per_sponsor_cap: int = 1
    slices: int | None = None
    # Staggered groups (seed 003 错峰): seconds between consecutive groups' starts, 0 or
    # 60 to 300; the last group (SHAKE_STAGGER_GROUPS - 1) must start before the end.
    stagger_seconds: int = 0


def activity_create(*, name: str, sponsors: list[SponsorPlan], rounds: list[RoundPlan]) -> Activity:
    """An activity in planning (nothing generated, no money moved yet)."""
    if not name or not sponsors or not rounds:
        raise PlanInvalid("An activity needs a name, sponsors and rounds.")
    for plan in rounds:
        _round_check(plan, len(sponsors))
    with transaction.atomic():
        activity = Activity.objects.create(name=name)
        Sponsor.objects.bulk_create(
            [
                Sponsor(
                    activity=activity, name=s.name, logo_url=s.logo_url, background=s.background
                )
                for s in sponsors
            ]
        )
        for plan in rounds:
            Round.objects.create(
                activity=activity,
                title=plan.title,
                planned_start=plan.planned_start,
                latest_start=plan.latest_start or plan.planned_start,
                duration_seconds=plan.duration_seconds,
                issue_rate=plan.issue_rate,
                per_user_cap=plan.per_user_cap,
                per_sponsor_cap=plan.per_sponsor_cap,
                stagger_seconds=plan.stagger_seconds,
                slices=plan.slices or settings.SHAKE_SLOTS,
                prize_plan=[
                    {
                        "sponsor": p.sponsor,
                        "count": p.count,
                        "total": p.total,
                        "kind": str(p.kind),
                        "extra_shares": p.extra_shares,
                        "extra_total": p.extra_total,
                        "business": p.business,
                        "coupon": p.coupon,
                    }
                    for p in plan.prizes
                ],
            )
    return activity


def _round_check(plan: RoundPlan, sponsors: int) -> None:
    if plan.duration_seconds <= 0 or plan.issue_rate <= 0 or not plan.prizes:
        raise PlanInvalid("A round needs a duration, an issue rate and prizes.")
    if plan.latest_start is not None and plan.latest_start < plan.planned_start:
        raise PlanInvalid("A round's latest start comes after its planned start.")
    if plan.per_user_cap < 1 or plan.per_sponsor_cap < 1:
        raise PlanInvalid("Caps are at least 1.")
    stagger_check(stagger_seconds=plan.stagger_seconds, duration_seconds=plan.duration_seconds)
    for prize in plan.prizes:
        if not 0 <= prize.sponsor < sponsors or prize.count < 1 or prize.total < prize.count:
            raise PlanInvalid("Each prize plan needs a sponsor, a count and at least 1 fen each.")
        if prize.kind not in PrizeKind.values or prize.extra_shares < 0:
            raise PlanInvalid("Unknown prize kind.")
        if prize.extra_shares and (
            prize.kind != PrizeKind.SPONSOR or prize.extra_total < prize.extra_shares
        ):
            raise PlanInvalid("Extra shares are sponsor packets', at least 1 fen each.")
        coupon = prize.kind == PrizeKind.COUPON
        if coupon != (prize.business is not None) or (coupon and not prize.coupon):
            raise PlanInvalid("A coupon names its business and the coupon; other prizes neither.")
        if prize.business is not None and not Business.objects.filter(pk=prize.business).exists():
            raise PlanInvalid("No such business.")


def stagger_check(*, stagger_seconds: int, duration_seconds: int) -> None:
    """A round's stagger (seed 003 错峰): 0, or 60 to 300 seconds between consecutive
    groups' starts, with the last group starting before the round ends."""
    if stagger_seconds and not 60 <= stagger_seconds <= 300:
        raise PlanInvalid("A round's stagger is 0 or 60 to 300 seconds (1 to 5 minutes).")
    if (settings.SHAKE_STAGGER_GROUPS - 1) * stagger_seconds >= duration_seconds:
        raise PlanInvalid("With this stagger the last group would start after the round.")


def _amounts(plan: PrizePlan, rng: random.Random) -> list[int]:
    if plan.kind in (PrizeKind.SPONSOR, PrizeKind.COUPON):
        return [plan.total // plan.count] * plan.count
    cuts = sorted(rng.sample(range(1, plan.total), plan.count - 1)) if plan.count > 1 else []
    edges = [0, *cuts, plan.total]
    return [b - a for a, b in itertools.pairwise(edges)]


def activity_approve(*, activity_id: int) -> int:
    """Generate, sign and slice every prize and fund the budget; returns the budget
    (fen). Refused if approved before (an approval is never repeated)."""
    rng = random.SystemRandom()  # amounts nobody can predict
    with transaction.atomic():
        activity = Activity.objects.select_for_update().get(pk=activity_id)
        if activity.approved_at is not None:
            raise AlreadyApproved("This activity is approved already.")
        sponsors = list(activity.sponsors.order_by("id"))
        rounds = list(activity.rounds.order_by("id"))
        total = 0
        for round_ in rounds:
            rows: list[Prize] = []
            for entry in round_.prize_plan:
                prize_plan = PrizePlan(**entry)
                for amount in _amounts(prize_plan, rng):
                    rows.append(
                        Prize(
                            round=round_,
                            slice=0,
                            kind=prize_plan.kind,
                            amount=amount,
                            sponsor=sponsors[prize_plan.sponsor],
                            extra_shares=prize_plan.extra_shares,
                            extra_amount=prize_plan.extra_total if prize_plan.extra_shares else 0,
                            business_id=prize_plan.business,
                            coupon=prize_plan.coupon,
                        )
                    )
            rng.shuffle(rows)  # every slice gets a fair mix of sponsors and amounts
            for index, row in enumerate(rows):
                row.slice = index % round_.slices
            Prize.objects.bulk_create(rows, batch_size=2000)
            for row in rows:
                row.signature = prize_sign(
                    prize_id=row.pk,
                    round_id=round_.pk,
                    amount=row.amount,
                    kind=row.kind,
                    sponsor_id=row.sponsor_id,
                    extra_shares=row.extra_shares,
                    extra_amount=row.extra_amount,
                )
            Prize.objects.bulk_update(rows, ["signature"], batch_size=2000)
            # A sponsor packet's amount is cash for its winner too (the sponsor's money
            # is in the budget); its extra shares are passed on as chat red packets. A
            # coupon's face value is the business's to give, not money of the budget.
            total += sum(
                row.amount + row.extra_amount for row in rows if row.kind != PrizeKind.COUPON
            )
        budget = budget_account_open(reference=activity.budget_reference)
        if total:  # an activity of coupons only holds no money
            ledger_transfer(
                idempotency_key=f"shake:{activity.pk}:fund",
                kind=TransactionKind.BUDGET_FUND,
                reason=f"Budget of {activity.name}",
                legs=[Leg(clearing_account_open().pk, -total), Leg(budget.pk, total)],
            )
        activity.approved_at = timezone.now()
        activity.budget_fen = total
        activity.save(update_fields=["approved_at", "budget_fen"])
    return total


def business_create(
    *, name: str, endpoint: str, secret: str, rate_per_second: int, timeout_seconds: float = 2.0
) -> Business:
    """A business whose coupons can be prizes (operators; also in the admin)."""
    if not name or not endpoint.startswith(("http://", "https://")) or not secret:
        raise PlanInvalid("A business needs a name, an http(s) endpoint and a secret.")
    if rate_per_second < 1 or timeout_seconds <= 0:
        raise PlanInvalid("A business's rate is at least 1 a second, its timeout positive.")
    return Business.objects.create(
        name=name,
        endpoint=endpoint,
        secret=secret,
        rate_per_second=rate_per_second,
        timeout_seconds=timeout_seconds,
    )
