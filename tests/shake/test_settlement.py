"""Closing an activity (docs/shake.md "Closing an activity"): once nothing can move its
budget any more, the rest goes back to the account that funded it, in one balanced
ledger transaction, once, audited, on the operators' page and in reconciliation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from accounts.services.operators import operator_grant
from redpackets.services.refunds import packets_refund_expired
from shake.exceptions import ActivityNotClosable
from shake.models import Activity, ActivitySettlement, Prize
from shake.services.control import round_end
from shake.services.opening import prize_credit
from shake.services.reconcile import shake_reconcile
from shake.services.settlement import activities_settle_due, activity_close
from shake.services.sharing import prize_shares_send, shares_recycle_due
from shake.tasks import settle
from tests.factories import login_session, make_user
from tests.redpackets.conftest import balanced_now, group_chat
from tests.shake.conftest import approved_round
from tests.shake.test_sharing import gala_of_two_rounds, ledger_reconciles, win_and_open
from tests.support.waiting import eventually
from wallet.models import LedgerTransaction
from wallet.selectors import ledger_balance
from wallet.services.ledger import budget_account_open, clearing_account_open

__all__ = ["balanced_now"]

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("balanced_now")]


def after_the_open_window() -> datetime:
    """A moment past every round's end (ended now) and its winners' time to open."""
    return timezone.now() + timedelta(seconds=settings.SHAKE_OPEN_SECONDS + 1)


def ended(activity: Activity) -> Activity:
    for round_ in activity.rounds.all():
        round_end(round_id=round_.pk, actor=None)
    return Activity.objects.get(pk=activity.pk)


def activity_of(round_: Any) -> Activity:
    return Activity.objects.get(pk=round_.activity_id)


def budget_of(activity: Activity) -> int:
    return ledger_balance(account_id=budget_account_open(reference=activity.budget_reference).pk)


def one_credited_win(activity_round: Any) -> Prize:
    session = login_session(make_user())
    prize = win_and_open(session.ticket, session.user.pk)
    assert prize_credit(prize_id=prize.pk)
    prize.refresh_from_db()
    return prize


def test_close__after_the_last_round__the_rest_back_to_the_funder__once__reconciled() -> None:
    # given: a round with one prize won and credited, then ended
    round_ = approved_round(prizes_each=5)
    activity = activity_of(round_)
    won = one_credited_win(round_)
    ended(activity)
    rest = activity.budget_fen - won.amount
    assert budget_of(activity) == rest
    clearing = clearing_account_open()
    clearing_before = ledger_balance(account_id=clearing.pk)
    operator = make_user(nickname="Ops")
    # when: an operator closes it after the open window, and closes it again
    first = activity_close(
        activity_id=activity.pk, actor=operator, reason="show over", now=after_the_open_window()
    )
    second = activity_close(activity_id=activity.pk, actor=None, now=after_the_open_window())
    # then: the whole rest went back to the clearing account, in one transaction
    assert budget_of(activity) == 0
    assert ledger_balance(account_id=clearing.pk) == clearing_before + rest
    transfer = LedgerTransaction.objects.get(idempotency_key=f"shake:{activity.pk}:settle")
    assert transfer.kind == "budget_settle"
    postings = {(p.account_id, p.amount) for p in transfer.postings.all()}
    assert postings == {
        (budget_account_open(reference=activity.budget_reference).pk, -rest),
        (clearing.pk, rest),
    }
    # and: audited once; the second close answered the same and moved nothing
    assert first.created
    assert not second.created
    assert second.settlement.pk == first.settlement.pk
    settlement = ActivitySettlement.objects.get()
    assert (settlement.actor, settlement.actor_label, settlement.reason) == (
        operator,
        str(operator),
        "show over",
    )
    assert (settlement.balance, settlement.held_back, settlement.returned) == (rest, 0, rest)
    assert LedgerTransaction.objects.filter(kind="budget_settle").count() == 1
    # and: reconciliation finds nothing wrong with the budget
    assert [p for p in shake_reconcile().problems if p["activity"] == activity.pk] == []


def test_close__refused_while_a_round_runs_or_its_winners_may_still_open() -> None:
    round_ = approved_round(prizes_each=2)
    activity = activity_of(round_)
    with pytest.raises(ActivityNotClosable, match="has not ended"):
        activity_close(activity_id=activity.pk, actor=None)
    ended(activity)
    with pytest.raises(ActivityNotClosable, match="may open their packets until"):
        activity_close(activity_id=activity.pk, actor=None)
    assert activities_settle_due() == 0
    assert not ActivitySettlement.objects.exists()
    assert budget_of(activity) == activity.budget_fen


def test_close__an_opened_prize_not_yet_credited__held_back__credited_afterwards() -> None:
    # given: a prize opened whose credit has not run yet (its task is under way)
    round_ = approved_round(prizes_each=5)
    activity = activity_of(round_)
    session = login_session(make_user())
    prize = win_and_open(session.ticket, session.user.pk)
    assert prize.credited_at is None
    ended(activity)
    # when: the activity is closed, and the credit comes afterwards
    closed = activity_close(activity_id=activity.pk, actor=None, now=after_the_open_window())
    assert prize_credit(prize_id=prize.pk)
    # then: the prize's amount stayed for it; the budget is empty after the credit
    assert (closed.settlement.held_back, closed.settlement.returned) == (
        prize.amount,
        activity.budget_fen - prize.amount,
    )
    assert budget_of(activity) == 0
    assert [p for p in shake_reconcile().problems if p["activity"] == activity.pk] == []


@override_settings(REDPACKETS_EXPIRE_SECONDS=60)
def test_close__shares_nobody_grabbed__no_later_round__settled_not_left_for_ever() -> None:
    # given: a single-round activity; a winner passed on 3 shares (300 fen), nobody
    # grabbed them, and the red packet's refund brought them back into the budget
    activity = gala_of_two_rounds(later_round=False)
    chat = group_chat(3)
    winner = chat.sessions[0]
    prize = win_and_open(winner.ticket, winner.user.pk)
    assert prize_credit(prize_id=prize.pk)
    prize_shares_send(
        ticket=winner.ticket,
        user_id=winner.user.pk,
        prize_id=prize.pk,
        conversation_id=chat.conversation,
    )
    ended(activity)
    with pytest.raises(ActivityNotClosable, match="still open"):
        activity_close(activity_id=activity.pk, actor=None, now=after_the_open_window())
    later = after_the_open_window()
    assert packets_refund_expired(now=later) == 1
    assert shares_recycle_due(now=later).unplaced == 1  # no round to take them
    held = budget_of(activity)
    # the unopened sponsor packet (100 + 300 fen) and the 300 fen that came back
    assert held == 100 + 300 + 300
    # when: the beat's pass runs (twice)
    assert activities_settle_due(now=later) == 1
    assert activities_settle_due(now=later) == 0
    # then: it all went back to the funder, by "system"; the shares pass forgets them
    settlement = ActivitySettlement.objects.get(activity=activity)
    assert (settlement.actor_label, settlement.returned) == ("system", held)
    assert budget_of(activity) == 0
    assert shares_recycle_due(now=later).unplaced == 0
    ledger_reconciles(activity)


def test_close__the_beat_task__closes_what_can_be_closed() -> None:
    done = ended(activity_of(approved_round(prizes_each=2)))
    waiting = activity_of(approved_round(prizes_each=2))  # still running
    with override_settings(SHAKE_OPEN_SECONDS=1):
        # The ended round's open window (1 s) passes; the task closes it then.
        eventually(lambda: settle(), timeout=60, what="the beat closing the ended activity")
    assert set(ActivitySettlement.objects.values_list("activity_id", flat=True)) == {done.pk}
    assert budget_of(done) == 0
    assert budget_of(waiting) == waiting.budget_fen


def test_close__from_the_operators_page__shown_with_its_amounts(client: Any) -> None:
    activity = ended(activity_of(approved_round(prizes_each=2)))
    operator = make_user(nickname="Ops")
    operator_grant(user=operator)
    client.force_login(operator)
    page = client.get("/operators/shake/").content.decode()
    assert f'data-activity="{activity.pk}" data-balance="{activity.budget_fen}"' in page
    assert "may open their packets until" in page  # why it cannot be closed yet
    # not closable yet: the page refuses, and says why
    client.post(f"/operators/shake/activities/{activity.pk}/close", {"reason": "early"})
    page = client.get("/operators/shake/").content.decode()
    assert "may open their packets until" in page
    assert not ActivitySettlement.objects.exists()
    with override_settings(SHAKE_OPEN_SECONDS=1):

        def close() -> bool:
            client.post(f"/operators/shake/activities/{activity.pk}/close", {"reason": "done"})
            return ActivitySettlement.objects.exists()

        eventually(close, timeout=60, what="the page closing the activity")
        page = client.get("/operators/shake/").content.decode()
    assert f'data-activity="{activity.pk}" data-balance="0" data-closed="yes"' in page
    assert f"{activity.budget_fen} fen returned, 0 held back (done)" in page
    assert ActivitySettlement.objects.get().actor == operator
    # and: the admin lists it (read-only)
    listed = client.get("/admin/shake/activitysettlement/")
    assert listed.status_code == 200
    assert activity.name in listed.content.decode()


def test_close__not_for_users(client: Any) -> None:
    activity = ended(activity_of(approved_round(prizes_each=2)))
    client.force_login(make_user())
    response = client.post(f"/operators/shake/activities/{activity.pk}/close")
    assert response.status_code == 302  # to the login
    assert not ActivitySettlement.objects.exists()
