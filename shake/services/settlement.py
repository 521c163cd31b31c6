"""Closing an activity: its budget's leftover goes back to the account that funded it
(docs/shake.md "Closing an activity").

Shares nobody grabbed come back into the budget (red packets' refund account), and
unshared shares stay there, when no later round takes them; money of prizes recycled
in a round that is over sits in its pool. Without a close, that money would stay in
the budget for ever. `activity_close` settles it, once:

- it is refused while anything could still move money into or out of the budget
  other than the credits already owed: a round not over, a round whose open window
  (SHAKE_OPEN_SECONDS after its end: winners may still open) is not over, a red packet
  of passed-on shares still open (its refund comes back into the budget);
- what winners of opened prizes are still owed (opened, not credited: their credit
  task is under way or lost, and reconciliation redoes it) stays in the budget;
- the rest moves budget → the clearing account (which funded it, `BUDGET_FUND`) in one
  balanced ledger transaction, `BUDGET_SETTLE`, idempotency key `shake:<id>:settle`;
- an `ActivitySettlement` row records who closed it, when, why, and the amounts; a
  second close answers the same row and moves nothing.

The beat's pass (`activities_settle_due`) closes every activity that can be closed, as
"system": nothing waits for an operator to remember.

Locks: the activity row (one close at a time; a credit locks its prize's activity row
too, so none commits while the close reads). What is owed is read before the budget's
balance: even a credit that did commit between the two reads would only leave its
amount in the budget (held back twice), never take the budget below what it owes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from redpackets.models import PacketState
from shake.exceptions import ActivityNotClosable, PlanInvalid
from shake.models import Activity, ActivitySettlement, Prize, PrizeKind, PrizeState, Round
from shake.schedule import schedule_of
from wallet.models import TransactionKind
from wallet.selectors import ledger_balance
from wallet.services.ledger import budget_account_open, clearing_account_open, ledger_transfer
from wallet.types import Leg
from wechat_core.metrics import counter

logger = logging.getLogger(__name__)

SETTLED_FEN = counter(
    "shake_budget_settled_fen_total",
    "Fen of closed activities' budgets returned to the account that funded them.",
)


@dataclass(frozen=True, slots=True)
class Closed:
    settlement: ActivitySettlement
    created: bool  # False: it was closed before; nothing moved now


def _round_open_until(round_: Round, now: datetime) -> datetime | None:
    """Until when the round can still move money (its window to open prizes), or None
    when it has not even ended."""
    schedule = schedule_of(round_, now)
    if not schedule.ended and (schedule.paused or schedule.ends > now.timestamp()):
        return None
    ends = datetime.fromtimestamp(schedule.ends, tz=now.tzinfo)
    return ends + timedelta(seconds=settings.SHAKE_OPEN_SECONDS)


def close_blocker(activity: Activity, now: datetime) -> str | None:
    """Why the activity cannot be closed now, or None when it can."""
    if activity.approved_at is None:
        return "This activity is not approved: it holds no budget."
    for round_ in activity.rounds.order_by("id"):
        until = _round_open_until(round_, now)
        if until is None:
            return f"Round {round_.title!r} has not ended: end it first."
        if until > now:
            return (
                f"Winners of round {round_.title!r} may open their packets until "
                f"{until.isoformat(timespec='seconds')}."
            )
    open_packets = Prize.objects.filter(
        round__activity=activity, shares_packet__state=PacketState.OPEN
    ).count()
    if open_packets:
        return (
            f"{open_packets} red packet(s) of passed-on shares are still open: what nobody "
            f"grabs comes back into the budget when they expire."
        )
    return None


def _owed(activity: Activity) -> int:
    """Fen owed to winners of opened prizes not credited yet."""
    owed = (
        Prize.objects.filter(
            round__activity=activity, state=PrizeState.OPENED, credited_at__isnull=True
        )
        .exclude(kind=PrizeKind.COUPON)
        .aggregate(total=Sum("amount"))["total"]
    )
    return int(owed or 0)


def activity_close(
    *,
    activity_id: int,
    actor: AbstractBaseUser | None,
    reason: str = "",
    now: datetime | None = None,
) -> Closed:
    """Close the activity and return its budget's rest to the funding account (see the
    module). Errors: shake_plan_invalid (no such activity), shake_not_closable (and why)."""
    now = now or timezone.now()
    with transaction.atomic():
        activity = Activity.objects.select_for_update().filter(pk=activity_id).first()
        if activity is None:
            raise PlanInvalid("No such activity.")
        done = ActivitySettlement.objects.filter(activity=activity).first()
        if done is not None:
            return Closed(done, created=False)
        blocker = close_blocker(activity, now)
        if blocker is not None:
            raise ActivityNotClosable(blocker)
        held_back = _owed(activity)
        budget = budget_account_open(reference=activity.budget_reference)
        balance = ledger_balance(account_id=budget.pk)
        returned = balance - held_back
        if returned < 0:  # the budget cannot pay what it owes: reconciliation's case
            raise ActivityNotClosable(
                f"The budget ({balance} fen) holds less than its winners are owed "
                f"({held_back} fen): see the reconciliation."
            )
        is_actor = actor is not None and actor.pk is not None
        settlement = ActivitySettlement.objects.create(
            activity=activity,
            at=now,
            actor=actor if is_actor else None,  # type: ignore[misc]
            actor_label=str(actor)[:150] if is_actor else "system",
            reason=reason[:200],
            balance=balance,
            held_back=held_back,
            returned=returned,
        )
        if returned:
            ledger_transfer(
                idempotency_key=settlement.idempotency_key,
                kind=TransactionKind.BUDGET_SETTLE,
                reason=f"Rest of the budget of {activity.name}"[:200],
                legs=[Leg(budget.pk, -returned), Leg(clearing_account_open().pk, returned)],
                metadata={"activity": activity.pk, "held_back": held_back},
            )
    if returned:
        SETTLED_FEN.inc(amount=returned)
    logger.info(
        "shake activity %s closed by %s: %s fen returned, %s held back",
        activity.pk,
        settlement.actor_label,
        returned,
        held_back,
    )
    return Closed(settlement, created=True)


def activities_settle_due(*, now: datetime | None = None) -> int:
    """The beat's pass: close every approved activity that can be closed (as "system").
    Returns how many it closed."""
    now = now or timezone.now()
    closed = 0
    for activity in Activity.objects.filter(
        approved_at__isnull=False, settlement__isnull=True
    ).order_by("id"):
        if close_blocker(activity, now) is not None:
            continue
        try:
            closed += activity_close(
                activity_id=activity.pk, actor=None, reason="closed by the beat", now=now
            ).created
        except ActivityNotClosable as error:  # changed meanwhile, or short of money
            logger.warning("shake activity %s not closed: %s", activity.pk, error.message)
    return closed


def budget_settled(activity: Activity) -> int:
    """Fen the activity's close returned to the funding account (0: not closed)."""
    return int(
        ActivitySettlement.objects.filter(activity=activity).aggregate(total=Sum("returned"))[
            "total"
        ]
        or 0
    )
