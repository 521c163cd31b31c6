"""Reconciliation of shake activities (docs/shake.md "Reconciliation"): a credit whose
task was lost is redone; money leaving a budget without a prize is found, left
unresolved and alerts operators; recycling by beat only with the registry readable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from monitoring.models import Alert, AlertRule
from shake.access import Engine
from shake.models import Prize
from shake.services.opening import Win, prize_open
from shake.services.reconcile import shake_reconcile
from shake.services.reserving import prizes_recycle_now, prizes_reserve
from tests.factories import login_session, make_user
from tests.shake.conftest import approved_round
from wallet.models import TransactionKind
from wallet.services.ledger import budget_account_open, ledger_transfer, wallet_account_open
from wallet.types import Leg

pytestmark = pytest.mark.django_db


def opened_but_never_credited() -> Prize:
    """A prize won and opened whose credit task never ran (lost with its worker)."""
    approved_round()
    session = login_session(make_user())
    engine = Engine()
    engine.step(force=True)
    answer = engine.shake(user_id=session.user.pk, record_token=None)
    assert answer.win is not None
    held = answer.win.prize
    win = Win(held.prize_id, held.round_id, held.amount, held.sponsor_id, answer.win.signature)
    prize_open(ticket=session.ticket, user_id=session.user.pk, win=win)
    prize = Prize.objects.get(pk=held.prize_id)
    assert prize.credited_at is None  # tests run tasks after commit, which never comes here
    Prize.objects.filter(pk=prize.pk).update(opened_at=timezone.now() - timedelta(hours=1))
    return prize


def test_a_lost_credit_is_redone_and_all_reconciles() -> None:
    prize = opened_but_never_credited()

    run = shake_reconcile()

    prize.refresh_from_db()
    assert prize.credited_at is not None
    assert (run.repaired, run.unresolved) == (1, 0)
    rule = AlertRule.objects.get(name="Shake reconciliation")
    assert not Alert.objects.filter(rule=rule, state="firing").exists()


def test_money_leaving_a_budget_without_a_prize_is_unresolved_and_alerts() -> None:
    round_ = approved_round()
    activity = round_.activity
    ledger_transfer(
        idempotency_key="stray-payout",
        kind=TransactionKind.BUDGET_PAYOUT,
        reason="a payout nobody won",
        legs=[
            Leg(budget_account_open(reference=activity.budget_reference).pk, -500),
            Leg(wallet_account_open(user_id=make_user().pk).pk, 500),
        ],
    )

    run = shake_reconcile()

    assert run.unresolved == 1
    assert run.problems[0]["problem"] == "budget_mismatch"
    rule = AlertRule.objects.get(name="Shake reconciliation")
    assert Alert.objects.filter(rule=rule, state="firing").exists()


def test_beat_recycles_dead_reservations_only_when_the_registry_can_be_read() -> None:
    round_ = approved_round(duration=10, starts_in=-100_000, slices=1)  # open window over
    prizes_reserve(round_id=round_.pk, slice_=0, owner="dead-owner", count=5)
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        assert prizes_recycle_now() == 0  # who is live is unknown: nothing touched
    assert prizes_recycle_now() == 5
