"""The ledger under real concurrency on PostgreSQL: threads with their own
connections, released together, committing for real."""

from __future__ import annotations

import pytest

from tests.factories import fund_wallet, login_ticket, make_user
from tests.support.concurrency import run_together
from wallet.exceptions import InsufficientFunds
from wallet.models import LedgerTransaction, TransactionKind
from wallet.reconcile import wallet_reconcile
from wallet.selectors import ledger_balance
from wallet.services.ledger import escrow_account_open, ledger_transfer, wallet_account_open
from wallet.services.wallets import wallet_spend
from wallet.types import Leg

pytestmark = pytest.mark.django_db(transaction=True)


def test_wallet_spend__many_threads_at_once__never_overdraw_the_wallet() -> None:
    # given: 1000 fen, and 40 spends of 70 fen racing (2800 fen asked)
    bob = make_user()
    wallet = fund_wallet(bob, 1000)
    ticket = login_ticket(bob)
    escrows = [escrow_account_open(reference=f"redpacket:c{n}") for n in range(40)]

    def spend(escrow_id: int, n: int):
        return lambda: wallet_spend(
            ticket=ticket,
            user_id=bob.pk,
            to_account_id=escrow_id,
            amount=70,
            idempotency_key=f"redpacket:c{n}:send",
            kind=TransactionKind.PACKET_SEND,
            reason="Red packet",
        )

    # when
    outcomes = run_together([spend(escrow.pk, n) for n, escrow in enumerate(escrows)])
    # then: exactly 14 went through (980 fen), the rest were refused, nothing else failed
    won = [o for o in outcomes if o.error is None]
    refused = [o for o in outcomes if isinstance(o.error, InsufficientFunds)]
    assert (len(won), len(refused)) == (14, 26), [o.error for o in outcomes if o.error]
    assert ledger_balance(account_id=wallet.pk) == 20
    assert sum(ledger_balance(account_id=e.pk) for e in escrows) == 980
    assert wallet_reconcile().ok


def test_ledger_transfer__crossing_transfers_at_once__never_deadlock() -> None:
    # given: two wallets paying each other back and forth
    alice, bob = fund_wallet(make_user(), 10_000), fund_wallet(make_user(), 10_000)
    pairs = [(alice, bob), (bob, alice)] * 15

    def pay(n: int, source, target):
        return lambda: ledger_transfer(
            idempotency_key=f"cross-{n}",
            kind=TransactionKind.ADJUSTMENT,
            reason="r",
            legs=[Leg(source.pk, -10), Leg(target.pk, 10)],
        )

    # when
    outcomes = run_together([pay(n, s, t) for n, (s, t) in enumerate(pairs)])
    # then: every transfer went through (a deadlock would have failed some)
    assert [o.error for o in outcomes if o.error] == []
    assert ledger_balance(account_id=alice.pk) + ledger_balance(account_id=bob.pk) == 20_000
    assert wallet_reconcile().ok


def test_ledger_transfer__one_key_from_many_threads__moves_the_money_once() -> None:
    # given: a crediting task delivered many times at once
    grabber = make_user()
    escrow_owner = fund_wallet(make_user(), 500)
    escrow = escrow_account_open(reference="redpacket:once")
    ledger_transfer(
        idempotency_key="once-fund",
        kind=TransactionKind.PACKET_SEND,
        reason="r",
        legs=[Leg(escrow_owner.pk, -500), Leg(escrow.pk, 500)],
    )
    wallet = wallet_account_open(user_id=grabber.pk)

    def credit():
        return ledger_transfer(
            idempotency_key="redpacket:once:grab:1",
            kind=TransactionKind.PACKET_GRAB,
            reason="Red packet",
            legs=[Leg(escrow.pk, -120), Leg(wallet.pk, 120)],
        )

    # when
    outcomes = run_together([credit for _ in range(20)])
    # then
    assert [o.error for o in outcomes if o.error] == []
    assert sum(o.value.created for o in outcomes) == 1
    assert len({o.value.transaction.pk for o in outcomes}) == 1
    assert ledger_balance(account_id=wallet.pk) == 120
    assert ledger_balance(account_id=escrow.pk) == 380
    assert LedgerTransaction.objects.filter(idempotency_key="redpacket:once:grab:1").count() == 1
