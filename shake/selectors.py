"""Reads of shake activities: the operators' pages, a winner's opened packet and
coupon (docs/shake.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from shake.exceptions import PrizeUnknown
from shake.models import (
    Activity,
    ActivitySettlement,
    CouponDelivery,
    DeliveryState,
    Prize,
    PrizeKind,
    PrizeState,
    Round,
    RoundControlEvent,
    SponsorAsset,
)
from shake.schedule import Schedule, schedule_of
from shake.services.assets import AssetEntry, Manifest, assets_counts
from shake.services.opening import Opened
from shake.services.settlement import close_blocker
from wallet.selectors import budget_balance


@dataclass(frozen=True, slots=True)
class RoundRow:
    round: Round
    schedule: Schedule
    starts: datetime
    ends: datetime
    state: str  # waiting, running, paused, over
    # Staggered groups (seed 003 错峰): None when the round is not staggered, else when
    # its last group starts (group g at starts + g * the round's stagger).
    last_group_starts: datetime | None = None


def _state(schedule: Schedule, now: float) -> str:
    if schedule.ended or (not schedule.paused and schedule.ends <= now):
        return "over"
    if schedule.starts > now:
        return "waiting"
    return "paused" if schedule.paused else "running"


def control_overview(*, limit: int = 50) -> list[tuple[Activity, list[RoundRow]]]:
    """Approved activities, newest first, with their rounds' live schedules."""
    now = timezone.now()
    activities = list(
        Activity.objects.filter(approved_at__isnull=False).order_by("-approved_at")[:limit]
    )
    rounds: dict[int, list[RoundRow]] = {activity.pk: [] for activity in activities}
    for round_ in Round.objects.filter(activity__in=activities).order_by("latest_start", "id"):
        schedule = schedule_of(round_, now)
        rounds[round_.activity_id].append(
            RoundRow(
                round=round_,
                schedule=schedule,
                starts=datetime.fromtimestamp(schedule.starts, tz=UTC),
                ends=datetime.fromtimestamp(schedule.ends, tz=UTC),
                state=_state(schedule, now.timestamp()),
                last_group_starts=datetime.fromtimestamp(
                    min(schedule.starts + (schedule.groups - 1) * schedule.stagger, schedule.ends),
                    tz=UTC,
                )
                if schedule.stagger
                else None,
            )
        )
    return [(activity, rounds[activity.pk]) for activity in activities]


@dataclass(frozen=True, slots=True)
class BudgetRow:
    """An activity's budget on the operators' page (docs/shake.md "Closing an
    activity"): what funded it, what it holds now, and its close, or why it cannot be
    closed yet."""

    activity: Activity
    funded: int
    balance: int
    settlement: ActivitySettlement | None
    blocker: str | None  # None: it can be closed now (or is closed)


def budgets_overview(activities: list[Activity]) -> list[BudgetRow]:
    now = timezone.now()
    settled = {
        row.activity_id: row for row in ActivitySettlement.objects.filter(activity__in=activities)
    }
    rows = []
    for activity in activities:
        settlement = settled.get(activity.pk)
        rows.append(
            BudgetRow(
                activity=activity,
                funded=activity.budget_fen,
                balance=budget_balance(reference=activity.budget_reference),
                settlement=settlement,
                blocker=None if settlement is not None else close_blocker(activity, now),
            )
        )
    return rows


def control_events_recent(*, limit: int = 100) -> list[RoundControlEvent]:
    return list(RoundControlEvent.objects.select_related("round__activity")[:limit])


@dataclass(frozen=True, slots=True)
class CouponView:
    """What the winner sees of a coupon (docs/shake.md "Coupons"): until it is
    delivered, "arrives within SHAKE_PAYOUT_ARRIVES_WITHIN_HOURS h"."""

    prize_id: int
    business: str
    coupon: str
    amount: int
    state: str
    arrives_within_hours: int | None
    can_retry: bool
    attempts: int
    delivered_at: datetime | None


def coupon_view(*, ticket: VerifiedTicket, user_id: int, prize_id: int) -> CouponView:
    ticket_require(ticket, user_id=user_id)
    delivery = (
        CouponDelivery.objects.select_related("business", "prize")
        .filter(prize_id=prize_id, user_id=user_id)
        .first()
    )
    if delivery is None:
        raise PrizeUnknown("No coupon of yours with that id.")
    return coupon_view_of(delivery)


def coupon_view_of(delivery: CouponDelivery) -> CouponView:
    delivered = delivery.state == DeliveryState.DELIVERED
    return CouponView(
        prize_id=delivery.prize_id,
        business=delivery.business.name,
        coupon=delivery.prize.coupon,
        amount=delivery.prize.amount,
        state=delivery.state,
        arrives_within_hours=None if delivered else settings.SHAKE_PAYOUT_ARRIVES_WITHIN_HOURS,
        can_retry=delivery.state in (DeliveryState.DEFERRED, DeliveryState.FAILED),
        attempts=delivery.attempts,
        delivered_at=delivery.delivered_at,
    )


def prize_opened_view(*, ticket: VerifiedTicket, user_id: int, prize_id: int) -> Opened:
    """A packet the user opened, as opening it again would answer, without writing:
    what a page polls to see the credit land (`credited`) or a coupon's delivery."""
    ticket_require(ticket, user_id=user_id)
    prize = (
        Prize.objects.select_related("delivery")
        .filter(pk=prize_id, winner_id=user_id, state=PrizeState.OPENED)
        .first()
    )
    if prize is None:
        raise PrizeUnknown("No packet of yours opened with that id.")
    delivery = getattr(prize, "delivery", None) if prize.kind == PrizeKind.COUPON else None
    return Opened(
        prize_id=prize.pk,
        amount=prize.amount,
        kind=prize.kind,
        extra_shares=prize.extra_shares,
        extra_amount=prize.extra_amount,
        credited=prize.credited_at is not None,
        delivery=delivery.state if delivery is not None else None,
    )


def manifest_of(activity_id: int) -> Manifest:
    """The activity's sponsor assets as clients fetch them (docs/shake.md "Sponsor
    assets"): each by its hash, newest version."""
    version = Activity.objects.filter(pk=activity_id).values_list("assets_version", flat=True)
    rows = SponsorAsset.objects.filter(sponsor__activity_id=activity_id).order_by(
        "sponsor_id", "role"
    )
    return Manifest(
        activity_id=activity_id,
        version=int(version.first() or 0),
        entries=tuple(
            AssetEntry(row.sha256, row.size, row.content_type, row.sponsor_id, row.role)
            for row in rows
        ),
    )


def asset_by_hash(sha256: str) -> SponsorAsset | None:
    return SponsorAsset.objects.filter(sha256=sha256).first()


@dataclass(frozen=True, slots=True)
class AssetsRow:
    activity: Activity
    manifest: Manifest
    online: int  # clients that reported recently
    holding: int  # of them, those holding the whole current manifest

    @property
    def share(self) -> float | None:
        return self.holding / self.online if self.online else None


def assets_overview(activities: list[Activity]) -> list[AssetsRow]:
    """Per activity with assets: the share of online clients holding all of them."""
    rows = []
    for activity in activities:
        manifest = manifest_of(activity.pk)
        if manifest.entries:
            online, holding = assets_counts(manifest)
            rows.append(AssetsRow(activity, manifest, online, holding))
    return rows
