"""Opening (拆) a won packet: the signature and the owner checked, the opening
recorded, the amount credited from the activity's budget exactly once."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from shake.access import Engine
from shake.exceptions import WinInvalid
from shake.models import Prize, PrizeState
from shake.services.opening import Win, prize_credit, prize_open
from tests.factories import login_session, make_user
from tests.shake.conftest import approved_round
from wallet.models import LedgerAccount, LedgerTransaction, TransactionKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def balanced_now(db: None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS wallet_posting_balanced IMMEDIATE")


def won(user_id: int) -> Win:
    engine = Engine()
    engine.step(force=True)
    answer = engine.shake(user_id=user_id, record_token=None)
    assert answer.win is not None
    prize = answer.win.prize
    return Win(prize.prize_id, prize.round_id, prize.amount, prize.sponsor_id, answer.win.signature)


def test_open__credits_the_winner_once_from_the_budget(balanced_now: None) -> None:
    round_ = approved_round(prizes_each=5)
    session = login_session(make_user())
    win = won(session.user.pk)
    opened = prize_open(ticket=session.ticket, user_id=session.user.pk, win=win)
    again = prize_open(ticket=session.ticket, user_id=session.user.pk, win=win)
    assert opened.prize_id == again.prize_id == win.prize_id
    assert opened.amount == win.amount
    assert prize_credit(prize_id=win.prize_id)
    assert prize_credit(prize_id=win.prize_id)
    payouts = LedgerTransaction.objects.filter(kind=TransactionKind.BUDGET_PAYOUT)
    assert payouts.count() == 1
    wallet = LedgerAccount.objects.get(user=session.user)
    assert wallet.balance == win.amount
    budget = LedgerAccount.objects.get(reference=round_.activity.budget_reference)
    round_.activity.refresh_from_db()
    assert budget.balance == round_.activity.budget_fen - win.amount
    prize = Prize.objects.get(pk=win.prize_id)
    assert prize.state == PrizeState.OPENED
    assert prize.credited_at is not None


def test_open__someone_elses_win__refused() -> None:
    approved_round(prizes_each=5)
    winner, other = make_user(), login_session(make_user())
    win = won(winner.pk)
    with pytest.raises(WinInvalid):
        prize_open(ticket=other.ticket, user_id=other.user.pk, win=win)


def test_open__forged_amount__refused() -> None:
    approved_round(prizes_each=5)
    session = login_session(make_user())
    win = won(session.user.pk)
    forged = Win(win.prize_id, win.round_id, win.amount + 100, win.sponsor_id, win.signature)
    with pytest.raises(WinInvalid):
        prize_open(ticket=session.ticket, user_id=session.user.pk, win=forged)


def test_get_packet__reads_the_opening_and_its_credit_without_opening_again(
    balanced_now: None,
) -> None:
    # given: a winner who opened a packet; the credit has not run yet
    approved_round(prizes_each=5)
    session = login_session(make_user())
    win = won(session.user.pk)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Ticket {session.token}")
    assert client.get(f"/api/shake/packets/{win.prize_id}").status_code == 404  # not opened
    prize_open(ticket=session.ticket, user_id=session.user.pk, win=win)
    # (the pool mixes cash and sponsor packets: which one was won is the draw's)
    prize = Prize.objects.get(pk=win.prize_id)
    opened_at = prize.opened_at
    # when: the page reads it, before and after the credit
    before = client.get(f"/api/shake/packets/{win.prize_id}")
    prize_credit(prize_id=win.prize_id)
    after = client.get(f"/api/shake/packets/{win.prize_id}")
    # then: the opening's answer, `credited` as it stands; nothing written by reading
    assert before.status_code == after.status_code == 200
    assert before.json() == {
        "packet": win.prize_id, "amount": win.amount, "kind": prize.kind,
        "extra_shares": prize.extra_shares, "extra_amount": prize.extra_amount,
        "credited": False, "delivery": None,
    }  # fmt: skip
    assert after.json()["credited"] is True
    assert Prize.objects.get(pk=win.prize_id).opened_at == opened_at
    # and: someone else asking is told there is no such packet of theirs
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Ticket {login_session(make_user()).token}")
    refused = other.get(f"/api/shake/packets/{win.prize_id}")
    assert (refused.status_code, refused.json()["code"]) == (404, "shake_prize_unknown")
