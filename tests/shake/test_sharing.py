"""A sponsor packet's extra shares passed on as a chat red packet (seed 004's 分裂红包,
docs/shake.md): the winner opens it, sends the shares into a group, another member
grabs one; the money comes from the activity's budget, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from redpackets.models import Packet
from redpackets.services.crediting import grab_credit
from redpackets.services.grabbing import packet_grab
from redpackets.services.reconcile import redpackets_reconcile
from redpackets.services.refunds import packets_refund_expired
from shake.access import Engine
from shake.exceptions import SharesUnavailable
from shake.frames import shares_frame
from shake.models import Activity, Prize
from shake.services.activities import PrizePlan, RoundPlan, activity_approve, activity_create
from shake.services.opening import Win, prize_open
from shake.services.reconcile import shake_reconcile
from shake.services.sharing import prize_shares_send, shares_recycle_due
from shake.signing import prize_sign
from tests.redpackets.conftest import balanced_now, group_chat
from tests.shake.conftest import SPONSORS, sponsor_round
from wallet.models import LedgerAccount, LedgerTransaction, TransactionKind
from wallet.selectors import ledger_balance
from wallet.services.ledger import budget_account_open, ledger_transfer, wallet_account_open
from wallet.types import Leg
from wechat_core.metrics import sample_value

__all__ = ["balanced_now"]  # the red-packet tests' fixture, used here too

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("balanced_now")]


def win_and_open(ticket: object, user_id: int, engine: Engine | None = None) -> Prize:
    if engine is None:
        engine = Engine()
        engine.step(force=True)
    answer = engine.shake(user_id=user_id, record_token=None)
    assert answer.win is not None
    prize = answer.win.prize
    prize_open(
        ticket=ticket,  # type: ignore[arg-type]
        user_id=user_id,
        win=Win(
            prize.prize_id, prize.round_id, prize.amount, prize.sponsor_id, answer.win.signature
        ),
    )
    return Prize.objects.get(pk=prize.prize_id)


def test_winner_passes_the_shares_into_a_group_and_a_member_grabs_one() -> None:
    activity_id = sponsor_round().activity_id
    chat = group_chat(3)
    winner, member = chat.sessions[0], chat.sessions[1]
    prize = win_and_open(winner.ticket, winner.user.pk)
    budget = LedgerAccount.objects.get(reference=f"shake:{activity_id}")
    before = budget.balance

    sent = prize_shares_send(
        ticket=winner.ticket,
        user_id=winner.user.pk,
        prize_id=prize.pk,
        conversation_id=chat.conversation,
    )
    again = prize_shares_send(
        ticket=winner.ticket,
        user_id=winner.user.pk,
        prize_id=prize.pk,
        conversation_id=chat.conversation,
    )

    assert (sent.shares, sent.amount, sent.duplicate) == (3, 300, False)
    assert again.redpacket_id == sent.redpacket_id
    assert again.duplicate
    frame = shares_frame(winner.ticket, {"packet": prize.pk, "conversation": chat.conversation})
    assert frame["type"] == "shake.shares_sent"
    assert (frame["redpacket"], frame["duplicate"]) == (sent.redpacket_id, True)
    budget.refresh_from_db()
    assert budget.balance == before - 300  # once
    grab = packet_grab(ticket=member.ticket, user_id=member.user.pk, packet_id=sent.redpacket_id)
    assert grab.outcome == "grabbed"
    assert grab.grab is not None
    assert 0 < grab.grab.amount < 300
    assert grab_credit(grab_id=grab.grab.pk)
    assert LedgerTransaction.objects.filter(kind="packet_grab").count() == 1


def test_shares_of_someone_else_or_of_an_unopened_packet_are_refused() -> None:
    sponsor_round()
    chat = group_chat(2)
    winner, other = chat.sessions
    prize = win_and_open(winner.ticket, winner.user.pk)
    with pytest.raises(SharesUnavailable):
        prize_shares_send(
            ticket=other.ticket,
            user_id=other.user.pk,
            prize_id=prize.pk,
            conversation_id=chat.conversation,
        )
    unopened = Prize.objects.exclude(pk=prize.pk).first()
    assert unopened is not None
    with pytest.raises(SharesUnavailable):
        prize_shares_send(
            ticket=winner.ticket,
            user_id=winner.user.pk,
            prize_id=unopened.pk,
            conversation_id=chat.conversation,
        )


def gala_of_two_rounds(*, later_round: bool = True) -> Activity:
    """Round 1 issuing now: 2 sponsor packets of 100 fen, each with 3 extra shares worth
    300 fen together; round 2 (if `later_round`) an hour away, 5 cash packets."""
    now = timezone.now()
    sponsor_packets = PrizePlan(
        sponsor=0, count=2, total=200, kind="sponsor", extra_shares=3, extra_total=300
    )
    rounds = [
        RoundPlan("Round 1", now - timedelta(seconds=1), 600, 1000, (sponsor_packets,), slices=1)
    ]
    if later_round:
        rounds.append(
            RoundPlan(
                "Round 2", now + timedelta(hours=1), 600, 1000, (PrizePlan(1, 5, 500),), slices=2
            )
        )
    activity = activity_create(name="Gala", sponsors=SPONSORS, rounds=rounds)
    activity_approve(activity_id=activity.pk)
    return activity


@override_settings(SHAKE_SHARES_PASS_ON_SECONDS=60)
def test_unshared_shares__after_the_pass_on_time__go_to_the_next_rounds_pool_once() -> None:
    # given: a winner who opened a sponsor packet with 3 extra shares and kept them
    activity = gala_of_two_rounds()
    chat = group_chat(2)
    winner = chat.sessions[0]
    prize = win_and_open(winner.ticket, winner.user.pk)
    later = activity.rounds.get(title="Round 2")
    recycled_before = sample_value("shake_shares_recycled_total")
    # when: the recycling pass runs within the pass-on time
    early = shares_recycle_due()
    # then: nothing moves
    assert (early.prizes, early.shares) == (0, 0)
    # when: it runs after the pass-on time, twice
    after = timezone.now() + timedelta(seconds=61)
    done = shares_recycle_due(now=after)
    again = shares_recycle_due(now=after)
    # then: the 300 fen are 3 cash prizes of the same sponsor in round 2's pool, once
    assert (done.prizes, done.shares, done.amount, done.unplaced) == (1, 3, 300, 0)
    assert (again.prizes, again.shares) == (0, 0)
    made = list(Prize.objects.filter(shares_of=prize))
    assert len(made) == 3
    assert sum(row.amount for row in made) == 300
    assert {(row.round_id, row.kind, row.state, row.sponsor_id) for row in made} == {
        (later.pk, "cash", "pool", prize.sponsor_id)
    }
    assert {row.slice for row in made} == {0, 1}  # dealt into the round's slices
    for row in made:
        assert row.signature == prize_sign(
            prize_id=row.pk, round_id=later.pk, amount=row.amount, kind="cash",
            sponsor_id=row.sponsor_id, extra_shares=0, extra_amount=0,
        )  # fmt: skip
    assert sample_value("shake_shares_recycled_total") == recycled_before + 3
    # and: the winner can no longer pass them on
    with pytest.raises(SharesUnavailable):
        prize_shares_send(
            ticket=winner.ticket,
            user_id=winner.user.pk,
            prize_id=prize.pk,
            conversation_id=chat.conversation,
        )
    # and: the money reconciles (the shares live on as round 2's prizes)
    assert [p for p in shake_reconcile().problems if p["activity"] == activity.pk] == []


@override_settings(SHAKE_SHARES_PASS_ON_SECONDS=60)
def test_shares_passed_on__or_in_the_ledger__are_never_recycled() -> None:
    # given: two winners; the first passed the shares on; the ledger holds the second's
    # passing-on transaction though its packet was never recorded (a torn write)
    activity = gala_of_two_rounds()
    chat = group_chat(3)
    first, second = chat.sessions[0], chat.sessions[1]
    engine = Engine()
    engine.step(force=True)
    passed = win_and_open(first.ticket, first.user.pk, engine)
    prize_shares_send(
        ticket=first.ticket,
        user_id=first.user.pk,
        prize_id=passed.pk,
        conversation_id=chat.conversation,
    )
    torn = win_and_open(second.ticket, second.user.pk, engine)
    ledger_transfer(
        idempotency_key=f"shake:prize:{torn.pk}:shares",
        kind=TransactionKind.BUDGET_PAYOUT,
        reason="Shake shares to pass on: Gala",
        legs=[
            Leg(budget_account_open(reference=activity.budget_reference).pk, -300),
            Leg(wallet_account_open(user_id=second.user.pk).pk, 300),
        ],
    )
    # when: the recycling pass runs after the pass-on time
    done = shares_recycle_due(now=timezone.now() + timedelta(seconds=61))
    # then: neither packet's shares went back to the pool
    assert (done.prizes, done.shares) == (0, 0)
    assert not Prize.objects.filter(shares_of__in=[passed, torn]).exists()


@override_settings(SHAKE_SHARES_PASS_ON_SECONDS=60)
def test_unshared_shares__no_later_round__stay_in_the_budget_until_one_comes() -> None:
    gala_of_two_rounds(later_round=False)
    winner = group_chat(2).sessions[0]
    prize = win_and_open(winner.ticket, winner.user.pk)
    done = shares_recycle_due(now=timezone.now() + timedelta(seconds=61))
    assert (done.prizes, done.unplaced) == (0, 1)
    prize.refresh_from_db()
    assert prize.shares_recycled_at is None


def pass_on_to_the_group(*, grabbers: int) -> tuple[Activity, Prize, int, list[int]]:
    """Round 1 now, round 2 in an hour; a winner opens a sponsor packet (3 extra shares,
    300 fen) and passes them on into a group of 4 where `grabbers` members grab a share
    each (credited). The activity, the prize, the red packet's id, the grabbed fen."""
    activity = gala_of_two_rounds()
    chat = group_chat(4)
    winner = chat.sessions[0]
    prize = win_and_open(winner.ticket, winner.user.pk)
    sent = prize_shares_send(
        ticket=winner.ticket,
        user_id=winner.user.pk,
        prize_id=prize.pk,
        conversation_id=chat.conversation,
    )
    grabbed = []
    for member in chat.sessions[1 : 1 + grabbers]:
        grab = packet_grab(
            ticket=member.ticket, user_id=member.user.pk, packet_id=sent.redpacket_id
        )
        assert grab.grab is not None
        assert grab_credit(grab_id=grab.grab.pk)
        grabbed.append(grab.grab.amount)
    return activity, prize, sent.redpacket_id, grabbed


def ledger_reconciles(activity: Activity) -> None:
    assert [p for p in shake_reconcile().problems if p["activity"] == activity.pk] == []
    report = redpackets_reconcile()
    assert (report.unresolved, report.ledger_ok) == (0, True), report.problems


@override_settings(REDPACKETS_EXPIRE_SECONDS=60)
@pytest.mark.parametrize("grabbers", [0, 1], ids=["nobody_grabs", "one_of_three_grabbed"])
def test_passed_on_shares__expired_ungrabbed__go_back_to_the_pool_not_to_the_winner(
    grabbers: int,
) -> None:
    # given: shares passed on into a group, `grabbers` of the 3 grabbed
    activity, prize, redpacket_id, grabbed = pass_on_to_the_group(grabbers=grabbers)
    budget = budget_account_open(reference=activity.budget_reference)
    assert prize.winner_id is not None
    winner_wallet = wallet_account_open(user_id=prize.winner_id)
    before = (ledger_balance(account_id=budget.pk), ledger_balance(account_id=winner_wallet.pk))
    rest, left = 300 - sum(grabbed), 3 - grabbers
    # when: the red packet expires; the refund and the shares pass each run twice
    later = timezone.now() + timedelta(seconds=61)
    refunds = [packets_refund_expired(now=later), packets_refund_expired(now=later)]
    passes = [shares_recycle_due(now=later), shares_recycle_due(now=later)]
    # then: the rest went back to the budget once; the winner's wallet did not move
    assert refunds == [1, 0]
    assert ledger_balance(account_id=budget.pk) == before[0] + rest
    assert ledger_balance(account_id=winner_wallet.pk) == before[1]
    refund = LedgerTransaction.objects.get(idempotency_key=f"redpacket:{redpacket_id}:refund")
    assert {(p.account_id, p.amount) for p in refund.postings.all()} == {
        (budget.pk, rest),
        (Packet.objects.get(pk=redpacket_id).escrow_id, -rest),
    }
    # and: it is one cash prize per unopened share in the next round's pool, once
    assert (passes[0].returned, passes[0].returned_shares, passes[0].returned_amount) == (
        1,
        left,
        rest,
    )
    assert (passes[1].returned, passes[1].shares) == (0, 0)
    made = list(Prize.objects.filter(shares_of=prize))
    later_round = activity.rounds.get(title="Round 2")
    assert len(made) == left
    assert sum(row.amount for row in made) == rest
    assert {(row.round_id, row.kind, row.state) for row in made} == {
        (later_round.pk, "cash", "pool")
    }
    prize.refresh_from_db()
    assert (prize.shares_returned, prize.shares_recycled_at) == (rest, None)
    # and: the money reconciles: the budget, the red packet, the whole ledger
    ledger_reconciles(activity)


@override_settings(REDPACKETS_EXPIRE_SECONDS=60)
def test_passed_on_shares__all_grabbed__nothing_comes_back() -> None:
    activity, prize, _, grabbed = pass_on_to_the_group(grabbers=3)
    budget = budget_account_open(reference=activity.budget_reference)
    before = ledger_balance(account_id=budget.pk)
    later = timezone.now() + timedelta(seconds=61)
    assert sum(grabbed) == 300
    assert packets_refund_expired(now=later) == 0  # finished: nothing to refund
    assert shares_recycle_due(now=later).returned == 0
    assert ledger_balance(account_id=budget.pk) == before
    assert not Prize.objects.filter(shares_of=prize).exists()
    ledger_reconciles(activity)


@override_settings(REDPACKETS_EXPIRE_SECONDS=60)
def test_passed_on_shares__expired__no_later_round__the_rest_stays_in_the_budget() -> None:
    # given: a single-round activity; the winner passed the shares on, nobody grabbed
    activity = gala_of_two_rounds(later_round=False)
    chat = group_chat(3)
    winner = chat.sessions[0]
    prize = win_and_open(winner.ticket, winner.user.pk)
    prize_shares_send(
        ticket=winner.ticket,
        user_id=winner.user.pk,
        prize_id=prize.pk,
        conversation_id=chat.conversation,
    )
    budget = budget_account_open(reference=activity.budget_reference)
    before = ledger_balance(account_id=budget.pk)
    # when: it expires and the passes run
    later = timezone.now() + timedelta(seconds=61)
    packets_refund_expired(now=later)
    done = shares_recycle_due(now=later)
    # then: the 300 fen are back in the budget, waiting for a round (counted unplaced)
    assert ledger_balance(account_id=budget.pk) == before + 300
    assert (done.returned, done.unplaced) == (0, 1)
    prize.refresh_from_db()
    assert prize.shares_returned_at is None
    ledger_reconciles(activity)
