"""A sponsor packet's extra shares passed on as a chat red packet (seed 004's 分裂红包).

The winner of a sponsor packet with `extra_shares`, once it is opened, sends them
into a chat (a friend or a group) as one lucky red packet of `extra_amount` fen in
that many shares, through red packets' own public service (`packet_send`): in one
transaction the amount moves from the activity's budget to the winner's wallet
(`BUDGET_PAYOUT`, idempotency key `shake:prize:<id>:shares`) and from there into
the red packet's escrow, with the `redpacket` message. Sending again answers the
same packet. The shares are the winner's to pass on, not to keep: the amount only
ever leaves the budget into a red packet.

Shares not passed on in time (seed 004: "不分享的也不会浪费,可以回收过来") go back to
the pool (`shares_recycle_due`, by beat): once SHAKE_SHARES_PASS_ON_SECONDS have passed
since the opening (or the round's open window is over, whichever comes first), the
extra amount, still in the budget, becomes `extra_shares` new cash prizes of the same
sponsor in the pool of the activity's next round that has not started, and the prize
is marked `shares_recycled_at`: from then on its shares cannot be passed on. Passing on
and recycling lock the prize's row, each checks the other has not happened, and
recycling also checks the ledger holds no passing-on transaction for it, so the money
goes out once, one way or the other.

Shares passed on that nobody grabbed go back too, not to the winner: the red packet
names the activity's budget as its refund account, so when it expires red packets
refund its undecided rest from the escrow into the budget (`redpacket:<id>:refund`).
The same pass then makes that rest into as many cash prizes as shares were left
unopened, in the same next round's pool, and marks the prize `shares_returned` (the
fen) / `shares_returned_at`, under its row lock: once. Only a packet whose refund
reached this activity's budget counts (one sent before refund accounts existed was
refunded to its winner).

When the activity has no later round, both stay in the budget (counted unplaced) until
the activity is closed: then its settlement returns them to the funding account
(services.settlement) and this pass no longer looks at them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from redpackets.models import PacketKind, PacketState
from redpackets.services.sending import PacketRequest, packet_send
from shake.exceptions import SharesUnavailable
from shake.models import Prize, PrizeKind, PrizeState, Round
from shake.schedule import round_window, schedule_of
from shake.signing import prize_sign
from wallet.models import TransactionKind
from wallet.selectors import ledger_keys_present
from wallet.services.ledger import budget_account_open, ledger_transfer, wallet_account_open
from wallet.types import Leg
from wechat_core.metrics import counter, gauge

SHARES_RECYCLED = counter(
    "shake_shares_recycled_total",
    "Extra shares of sponsor packets not passed on in time, gone back to a later round's "
    "pool as cash prizes.",
)
SHARES_RECYCLED_FEN = counter(
    "shake_shares_recycled_fen_total", "Fen of the extra shares gone back to the pool."
)
SHARES_RETURNED_FEN = counter(
    "shake_shares_returned_fen_total",
    "Fen of passed-on shares nobody grabbed, refunded by their red packet into the budget "
    "and gone back to a later round's pool as cash prizes.",
)
SHARES_UNPLACED = gauge(
    "shake_shares_unplaced",
    "Sponsor packets whose shares (unshared, or passed on and not grabbed) are due back to "
    "the pool but whose activity has no round left to start (they stay in its budget), at "
    "the last recycling pass.",
    mode="mostrecent",
)


@dataclass(frozen=True, slots=True)
class SharesSent:
    prize_id: int
    redpacket_id: int
    shares: int
    amount: int
    duplicate: bool


def prize_shares_send(
    *,
    ticket: VerifiedTicket,
    user_id: int,
    prize_id: int,
    conversation_id: int,
    greeting: str = "",
) -> SharesSent:
    """Send an opened sponsor packet's extra shares into a chat the user is in.

    Errors: shake_shares_unavailable (not yours, not opened, no shares, too late),
    and whatever a red packet send refuses (conversation_not_found, not_friends…)."""
    ticket_require(ticket, user_id=user_id)
    with transaction.atomic():
        prize = (
            Prize.objects.select_for_update()
            .select_related("round__activity", "sponsor")
            .filter(pk=prize_id, winner_id=user_id, state=PrizeState.OPENED)
            .first()
        )
        if prize is None or prize.kind != PrizeKind.SPONSOR or not prize.extra_shares:
            raise SharesUnavailable()
        if prize.shares_packet_id is not None:
            return SharesSent(
                prize.pk, prize.shares_packet_id, prize.extra_shares, prize.extra_amount, True
            )
        if prize.shares_recycled_at is not None or timezone.now() > shares_deadline(prize):
            raise SharesUnavailable("These shares were not passed on in time.")
        activity = prize.round.activity
        budget = budget_account_open(reference=activity.budget_reference)
        ledger_transfer(
            idempotency_key=f"shake:prize:{prize.pk}:shares",
            kind=TransactionKind.BUDGET_PAYOUT,
            reason=f"Shake shares to pass on: {activity.name}",
            legs=[
                Leg(budget.pk, -prize.extra_amount),
                Leg(wallet_account_open(user_id=user_id).pk, prize.extra_amount),
            ],
            metadata={"prize": prize.pk, "shares": prize.extra_shares},
        )
        sent = packet_send(
            ticket=ticket,
            user_id=user_id,
            request=PacketRequest(
                conversation_id=conversation_id,
                client_id=f"shake-shares-{prize.pk}",
                kind=PacketKind.LUCKY,
                total_amount=prize.extra_amount,
                shares=prize.extra_shares,
                greeting=greeting or f"{prize.sponsor.name} 分享红包",
                # What nobody grabs goes back to the pool, not to the winner.
                refund_account_id=budget.pk,
            ),
        )
        prize.shares_packet = sent.packet
        prize.save(update_fields=["shares_packet"])
    return SharesSent(prize.pk, sent.packet.pk, prize.extra_shares, prize.extra_amount, False)


def shares_deadline(prize: Prize) -> datetime:
    """Until when an opened sponsor packet's extra shares may be passed on: the pass-on
    time after its opening, or the end of its round's open window if that comes first."""
    _, ends = round_window(prize.round, timezone.now())
    window = ends + timedelta(seconds=settings.SHAKE_OPEN_SECONDS)
    if prize.opened_at is None:
        return window
    return min(prize.opened_at + timedelta(seconds=settings.SHAKE_SHARES_PASS_ON_SECONDS), window)


@dataclass(frozen=True, slots=True)
class SharesRecycled:
    prizes: int  # sponsor packets whose shares went back
    shares: int  # new cash prizes made of them
    amount: int  # fen
    unplaced: int  # due, but no later round to take them yet (tried again next pass)
    # Of `prizes`, those whose shares were passed on and came back ungrabbed (the rest
    # of their red packet), with their new prizes and fen (in `shares` and `amount` too).
    returned: int = 0
    returned_shares: int = 0
    returned_amount: int = 0


def shares_recycle_due(*, now: datetime | None = None) -> SharesRecycled:
    """The beat's pass: recycle every opened sponsor packet's shares that were not
    passed on by their deadline, and the refunded rest of those passed on that nobody
    grabbed, into a later round's pool (see the module)."""
    now = now or timezone.now()
    due = [
        prize
        for prize in Prize.objects.select_related("round")
        .filter(
            kind=PrizeKind.SPONSOR,
            state=PrizeState.OPENED,
            extra_shares__gt=0,
            shares_packet__isnull=True,
            shares_recycled_at__isnull=True,
            # A closed activity's budget was settled: its shares have no round to go to.
            round__activity__settlement__isnull=True,
        )
        .order_by("id")
        if shares_deadline(prize) < now
    ]
    passed = ledger_keys_present(keys=[_shares_key(prize.pk) for prize in due])
    prizes = shares = amount = unplaced = 0
    for prize in due:
        if _shares_key(prize.pk) in passed:
            continue  # the ledger says they left the budget: never twice
        made = _shares_recycle(prize_id=prize.pk, now=now)
        if made is None:
            unplaced += 1
            continue
        prizes, shares, amount = prizes + 1, shares + made[0], amount + made[1]
    returned = returned_shares = returned_amount = 0
    for prize_id in _returns_due():
        came = _shares_return(prize_id=prize_id, now=now)
        if came is None:
            unplaced += 1
            continue
        returned, returned_shares, returned_amount = (
            returned + 1,
            returned_shares + came[0],
            returned_amount + came[1],
        )
    SHARES_RECYCLED.inc(amount=shares + returned_shares)
    SHARES_RECYCLED_FEN.inc(amount=amount + returned_amount)
    SHARES_RETURNED_FEN.inc(amount=returned_amount)
    SHARES_UNPLACED.set(value=unplaced)
    return SharesRecycled(
        prizes + returned,
        shares + returned_shares,
        amount + returned_amount,
        unplaced,
        returned,
        returned_shares,
        returned_amount,
    )


def _shares_key(prize_id: int) -> str:
    return f"shake:prize:{prize_id}:shares"


def _next_round(prize: Prize, now: datetime) -> Round | None:
    """The activity's first round, by its schedule, that has not started yet."""
    waiting = [
        (schedule.starts, round_.pk, round_)
        for round_ in Round.objects.filter(
            activity_id=prize.round.activity_id, ended_at__isnull=True
        ).exclude(pk=prize.round_id)
        if (schedule := schedule_of(round_, now)).starts > now.timestamp()
    ]
    return min(waiting, key=lambda entry: entry[:2])[2] if waiting else None


def _cash_prizes(prize: Prize, target: Round, amount: int, count: int) -> list[Prize]:
    """`amount` fen as `count` signed cash prizes of the prize's sponsor in `target`'s
    pool (split evenly, dealt into its slices), pointing back to `prize`."""
    share, rest = divmod(amount, count)
    rows = [
        Prize(
            round=target,
            slice=index % target.slices,
            kind=PrizeKind.CASH,
            amount=share + (1 if index < rest else 0),
            sponsor_id=prize.sponsor_id,
            shares_of=prize,
        )
        for index in range(count)
    ]
    Prize.objects.bulk_create(rows)
    for row in rows:
        row.signature = prize_sign(
            prize_id=row.pk,
            round_id=target.pk,
            amount=row.amount,
            kind=row.kind,
            sponsor_id=row.sponsor_id,
            extra_shares=0,
            extra_amount=0,
        )
    Prize.objects.bulk_update(rows, ["signature"])
    return rows


def _shares_recycle(*, prize_id: int, now: datetime) -> tuple[int, int] | None:
    """One prize's shares into the next round's pool: (shares, fen), or None when
    there is no round to take them (or they are gone meanwhile: passed on)."""
    with transaction.atomic():
        prize = (
            Prize.objects.select_for_update()
            .select_related("round")
            .filter(pk=prize_id, shares_packet__isnull=True, shares_recycled_at__isnull=True)
            .first()
        )
        if prize is None:
            return None
        target = _next_round(prize, now)
        if target is None:
            return None
        rows = _cash_prizes(prize, target, prize.extra_amount, prize.extra_shares)
        prize.shares_recycled_at = now
        prize.save(update_fields=["shares_recycled_at"])
    return len(rows), prize.extra_amount


def _returns_due() -> list[int]:
    """Passed-on shares whose red packet expired and refunded a rest into a budget,
    not yet made into prizes."""
    return list(
        Prize.objects.filter(
            kind=PrizeKind.SPONSOR,
            shares_returned_at__isnull=True,
            shares_packet__state=PacketState.EXPIRED,
            shares_packet__refunded_amount__gt=0,
            shares_packet__refund_account__isnull=False,
            round__activity__settlement__isnull=True,
        )
        .order_by("id")
        .values_list("id", flat=True)
    )


def _shares_return(*, prize_id: int, now: datetime) -> tuple[int, int] | None:
    """One passed-on packet's refunded rest into the next round's pool: (shares, fen),
    or None when there is no round to take it (or it is done meanwhile)."""
    with transaction.atomic():
        prize = (
            Prize.objects.select_for_update(of=("self",))
            .select_related("round__activity", "shares_packet")
            .filter(pk=prize_id, shares_returned_at__isnull=True)
            .first()
        )
        packet = prize.shares_packet if prize is not None else None
        if prize is None or packet is None or packet.state != PacketState.EXPIRED:
            return None
        budget = budget_account_open(reference=prize.round.activity.budget_reference)
        if packet.refund_account_id != budget.pk or not packet.refunded_amount:
            return None  # the rest went elsewhere (the winner, before refund accounts)
        target = _next_round(prize, now)
        if target is None:
            return None
        # One cash prize per share nobody opened (each at least 1 fen: a lucky packet
        # keeps that much back for every undecided share).
        rows = _cash_prizes(prize, target, packet.refunded_amount, packet.remaining_shares)
        prize.shares_returned, prize.shares_returned_at = packet.refunded_amount, now
        prize.save(update_fields=["shares_returned", "shares_returned_at"])
    return len(rows), packet.refunded_amount
