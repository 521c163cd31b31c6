"""Withdrawals against the payment sandbox: held at once, settled on success, refunded
on a final refusal, asked about when the outcome is unknown, and never both."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.factories import fund_wallet, login_ticket, make_user
from tests.support.paysandbox import Sandbox
from wallet.exceptions import (
    AmountOutOfRange,
    DailyLimitExceeded,
    IdempotencyConflict,
    InsufficientFunds,
)
from wallet.models import LedgerAccount, TransactionKind, Withdrawal, WithdrawalStatus
from wallet.reconcile import wallet_reconcile
from wallet.selectors import ledger_balance
from wallet.services.ledger import clearing_account_open
from wallet.services.wallets import wallet_credit
from wallet.services.withdrawals import (
    _withdrawal_refund,
    provider_openid,
    withdrawal_check,
    withdrawal_create,
    withdrawal_submit,
    withdrawals_check_pending,
)

pytestmark = pytest.mark.django_db


def _withdraw(user: Any, amount: int, client_id: str = "w1") -> Withdrawal:
    return withdrawal_create(
        ticket=login_ticket(user), user_id=user.pk, client_id=client_id, amount=amount
    ).withdrawal


def test_withdrawal_create__holds_the_amount_at_once(sandbox: Sandbox) -> None:
    # given
    alice = make_user()
    wallet = fund_wallet(alice, 1000)
    # when
    withdrawal = _withdraw(alice, 600)
    # then: the wallet is short at once, the hold account has it, nothing sent yet
    assert withdrawal.status == WithdrawalStatus.PENDING
    assert ledger_balance(account_id=wallet.pk) == 400
    assert ledger_balance(account_id=withdrawal.hold_account_id) == 600
    assert sandbox.transfers() == []


def test_withdrawal_submit__provider_pays__settles_into_clearing(sandbox: Sandbox) -> None:
    alice = make_user()
    fund_wallet(alice, 1000)
    clearing_before = ledger_balance(account_id=clearing_account_open().pk)
    withdrawal = withdrawal_submit(withdrawal_id=_withdraw(alice, 600).pk)
    assert withdrawal.status == WithdrawalStatus.SUCCEEDED
    assert ledger_balance(account_id=withdrawal.hold_account_id) == 0
    assert ledger_balance(account_id=clearing_account_open().pk) == clearing_before + 600
    [sent] = sandbox.transfers()
    assert (sent["amount"], sent["state"], sent["openid"]) == (
        600,
        "SUCCESS",
        provider_openid(user_id=alice.pk),
    )
    assert withdrawal.payment_no == sent["payment_no"]
    assert wallet_reconcile().ok


def test_withdrawal_submit__provider_refuses__refunds_the_wallet(sandbox: Sandbox) -> None:
    # given: the merchant's balance at the provider is too low
    alice = make_user()
    wallet = fund_wallet(alice, 1000)
    sandbox.faults(fail_transfers=["NOTENOUGH"])
    # when
    withdrawal = withdrawal_submit(withdrawal_id=_withdraw(alice, 600).pk)
    # then
    assert withdrawal.status == WithdrawalStatus.FAILED
    assert withdrawal.failure_code == "NOTENOUGH"
    assert ledger_balance(account_id=wallet.pk) == 1000
    assert ledger_balance(account_id=withdrawal.hold_account_id) == 0
    assert wallet_reconcile().ok


@pytest.mark.parametrize(("outcome", "status"), [("SUCCESS", "succeeded"), ("FAILED", "failed")])
def test_withdrawal__outcome_unknown__stays_processing_until_a_query_says(
    sandbox: Sandbox, outcome: str, status: str
) -> None:
    # given: the provider answers SYSTEMERROR, having in truth paid (or not)
    alice = make_user()
    wallet = fund_wallet(alice, 1000)
    sandbox.faults(unknown_transfers=[outcome])
    # when
    withdrawal = withdrawal_submit(withdrawal_id=_withdraw(alice, 600).pk)
    # then: nothing is refunded on a guess
    assert withdrawal.status == WithdrawalStatus.PROCESSING
    assert ledger_balance(account_id=wallet.pk) == 400
    # when: the query says how it ended
    withdrawal = withdrawal_check(withdrawal_id=withdrawal.pk)
    # then
    assert withdrawal.status == status
    assert ledger_balance(account_id=wallet.pk) == (400 if outcome == "SUCCESS" else 1000)
    assert wallet_reconcile().ok


def test_withdrawal__settled__can_no_longer_be_refunded(sandbox: Sandbox) -> None:
    alice = make_user()
    wallet = fund_wallet(alice, 1000)
    withdrawal = withdrawal_submit(withdrawal_id=_withdraw(alice, 600).pk)
    again = _withdrawal_refund(withdrawal_id=withdrawal.pk, code="X", message="late")
    assert again.status == WithdrawalStatus.SUCCEEDED
    assert ledger_balance(account_id=wallet.pk) == 400


def test_withdrawal_hold_account__once_settled__cannot_pay_anyone_again(
    sandbox: Sandbox,
) -> None:
    # given: a settled withdrawal, and code that would skip the status check
    alice = make_user()
    fund_wallet(alice, 1000)
    withdrawal = withdrawal_submit(withdrawal_id=_withdraw(alice, 600).pk)
    # when / then: its hold account is empty, so the ledger refuses a refund from it
    with pytest.raises(InsufficientFunds):
        wallet_credit(
            user_id=alice.pk,
            from_account_id=withdrawal.hold_account_id,
            amount=600,
            idempotency_key=f"withdrawal:{withdrawal.pk}:refund",
            kind=TransactionKind.WITHDRAWAL_REFUND,
            reason="late refund",
        )


def test_withdrawal_submit__sent_twice__pays_once(sandbox: Sandbox) -> None:
    # given: a sent withdrawal put back to processing, as after a lost answer
    alice = make_user()
    fund_wallet(alice, 1000)
    withdrawal = _withdraw(alice, 300)
    sandbox.faults(unknown_transfers=["SUCCESS"])
    withdrawal_submit(withdrawal_id=withdrawal.pk)
    # when: it is sent again with the same partner_trade_no
    withdrawal = withdrawal_submit(withdrawal_id=withdrawal.pk)
    # then: the provider answers with the first transfer (the fault is spent); one payment
    assert len(sandbox.transfers()) == 1
    assert withdrawal.attempts == 2


def test_withdrawals_check_pending__a_lost_task__is_sent_by_the_sweep(
    sandbox: Sandbox, settings: Any
) -> None:
    # given: a withdrawal whose task never ran, a minute old
    settings.WALLET_ORDER_CHECK_AFTER_SECONDS = 30
    alice = make_user()
    fund_wallet(alice, 1000)
    withdrawal = _withdraw(alice, 500)
    Withdrawal.objects.filter(pk=withdrawal.pk).update(
        created_at=timezone.now() - timedelta(minutes=1)
    )
    # when
    assert withdrawals_check_pending() == 1
    # then
    withdrawal.refresh_from_db()
    assert withdrawal.status == WithdrawalStatus.SUCCEEDED


def test_withdrawal_create__more_than_the_wallet__is_refused_and_holds_nothing(
    sandbox: Sandbox,
) -> None:
    alice = make_user()
    wallet = fund_wallet(alice, 100)
    with pytest.raises(InsufficientFunds):
        _withdraw(alice, 101)
    assert ledger_balance(account_id=wallet.pk) == 100
    assert not Withdrawal.objects.exists()
    assert not LedgerAccount.objects.filter(kind="withdrawing").exists()


def test_withdrawal_create__same_client_id__returns_the_first_or_a_conflict(
    sandbox: Sandbox,
) -> None:
    alice = make_user()
    wallet = fund_wallet(alice, 1000)
    first = _withdraw(alice, 100, client_id="same")
    again = withdrawal_create(
        ticket=login_ticket(alice), user_id=alice.pk, client_id="same", amount=100
    )
    assert again.duplicate is True
    assert again.withdrawal.pk == first.pk
    with pytest.raises(IdempotencyConflict):
        _withdraw(alice, 200, client_id="same")
    assert ledger_balance(account_id=wallet.pk) == 900


@pytest.mark.parametrize("amount", [29, 2_000_001])
def test_withdrawal_create__amount_outside_the_limits__is_refused(
    sandbox: Sandbox, amount: int
) -> None:
    alice = make_user()
    fund_wallet(alice, 3_000_000)
    with pytest.raises(AmountOutOfRange):
        _withdraw(alice, amount)


def test_withdrawal_create__beyond_the_daily_limit__is_refused_but_refunds_do_not_count(
    sandbox: Sandbox, settings: Any
) -> None:
    settings.WALLET_WITHDRAWAL_MAX_FEN_PER_DAY = 1000
    alice = make_user()
    fund_wallet(alice, 5000)
    sandbox.faults(fail_transfers=["NOTENOUGH"])
    withdrawal_submit(withdrawal_id=_withdraw(alice, 900, client_id="refused").pk)
    _withdraw(alice, 900, client_id="kept")
    with pytest.raises(DailyLimitExceeded):
        _withdraw(alice, 101, client_id="over")
