"""Opening (拆) a won prize and paying it (seed 004: the user's action succeeds
first; the money follows on `payout_fast`).

`prize_open` checks the win's signature and owner without the database, then
records the opening in one conditional UPDATE (the prize must be reserved or
issued, and be this user's or nobody's yet) and enqueues the credit after commit.
`prize_credit` moves the amount from the activity's budget to the winner's wallet
under the idempotency key `shake:prize:<id>`: exactly once, whatever the retries.
A coupon is not money: its opening makes its delivery record instead, and the
delivery to its business follows on `payout_slow` (services.delivery).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from shake.exceptions import PrizeUnknown, WinInvalid
from shake.models import Prize, PrizeKind, PrizeState
from shake.schedule import round_window
from shake.services.delivery import delivery_open
from shake.signing import win_check
from wallet.models import TransactionKind
from wallet.services.ledger import budget_account_open, ledger_transfer, wallet_account_open
from wallet.types import Leg
from wechat_core.transactions import after_commit, task_enqueue


@dataclass(frozen=True, slots=True)
class Win:
    prize_id: int
    round_id: int
    amount: int
    sponsor_id: int
    signature: str


@dataclass(frozen=True, slots=True)
class Opened:
    prize_id: int
    amount: int
    kind: str
    extra_shares: int
    extra_amount: int
    credited: bool
    # Coupons: the delivery's state (docs/shake.md "Coupons"); None for cash.
    delivery: str | None = None


def prize_open(*, ticket: VerifiedTicket, user_id: int, win: Win) -> Opened:
    ticket_require(ticket, user_id=user_id)
    if not win_check(
        win.signature,
        prize_id=win.prize_id,
        round_id=win.round_id,
        user_id=user_id,
        amount=win.amount,
        sponsor_id=win.sponsor_id,
    ):
        raise WinInvalid()
    now = timezone.now()
    with transaction.atomic():
        prize = (
            Prize.objects.select_related("round")
            .filter(pk=win.prize_id, round_id=win.round_id)
            .first()
        )
        if prize is None:
            raise PrizeUnknown("No such prize.")
        round_ = prize.round
        _, ends = round_window(round_, now)
        if now > ends + timedelta(seconds=settings.SHAKE_OPEN_SECONDS):
            raise WinInvalid("This prize was not opened in time.")
        updated = (
            Prize.objects.filter(
                pk=prize.pk, state__in=[PrizeState.RESERVED, PrizeState.ISSUED, PrizeState.OPENED]
            )
            .filter(Q(winner__isnull=True) | Q(winner_id=user_id))
            .filter(Q(opened_at__isnull=True))
            .update(state=PrizeState.OPENED, winner_id=user_id, opened_at=now)
        )
        if not updated:
            prize.refresh_from_db()
            if prize.state != PrizeState.OPENED or prize.winner_id != user_id:
                raise WinInvalid()
        elif prize.kind != PrizeKind.COUPON:
            after_commit(lambda: _enqueue_credit(prize.pk), name="shake_credit_enqueue")
        prize.refresh_from_db()
        delivery = delivery_open(prize=prize) if prize.kind == PrizeKind.COUPON else None
    return Opened(
        prize_id=prize.pk,
        amount=prize.amount,
        kind=prize.kind,
        extra_shares=prize.extra_shares,
        extra_amount=prize.extra_amount,
        credited=prize.credited_at is not None,
        delivery=delivery.state if delivery is not None else None,
    )


def _enqueue_credit(prize_id: int) -> None:
    task_enqueue("shake.tasks.credit_prize", prize_id)


def prize_credit(*, prize_id: int) -> bool:
    """Credit an opened prize from the budget (exactly once). True if it is credited."""
    with transaction.atomic():
        prize = (
            Prize.objects.select_for_update()
            .select_related("round__activity")
            .filter(pk=prize_id, state=PrizeState.OPENED)
            .exclude(kind=PrizeKind.COUPON)  # delivered by its business, not paid
            .first()
        )
        if prize is None or prize.winner_id is None:
            return False
        if prize.credited_at is not None:
            return True
        activity = prize.round.activity
        budget = budget_account_open(reference=activity.budget_reference)
        wallet = wallet_account_open(user_id=prize.winner_id)
        ledger_transfer(
            idempotency_key=f"shake:prize:{prize.pk}",
            kind=TransactionKind.BUDGET_PAYOUT,
            reason=f"Shake prize: {activity.name}",
            legs=[Leg(budget.pk, -prize.amount), Leg(wallet.pk, prize.amount)],
            metadata={"prize": prize.pk, "round": prize.round_id},
        )
        prize.credited_at = timezone.now()
        prize.save(update_fields=["credited_at"])
    return True
