"""Ledger invariants under any sequence of transfers (hypothesis): balances equal the
sums of postings and match a model of the intended moves, no account but the
clearing one is ever negative, each transaction balances, repeats move nothing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import make_user
from wallet.exceptions import IdempotencyConflict, InsufficientFunds
from wallet.models import LedgerAccount, Posting, TransactionKind
from wallet.reconcile import wallet_reconcile
from wallet.services.ledger import (
    budget_account_open,
    clearing_account_open,
    escrow_account_open,
    ledger_transfer,
    wallet_account_open,
)
from wallet.types import Leg

ACCOUNTS = 5  # 0 is the clearing account; 1-2 wallets; 3 an escrow; 4 a budget


@dataclass(frozen=True)
class Move:
    key: int  # small, so keys repeat: replays and conflicts
    legs: tuple[tuple[int, int], ...]  # (account index, amount)


@st.composite
def moves(draw: st.DrawFn) -> Move:
    count = draw(st.integers(min_value=2, max_value=4))
    accounts = draw(st.permutations(range(ACCOUNTS)))[:count]
    amounts = [
        draw(st.integers(min_value=-2000, max_value=2000).filter(bool)) for _ in range(count - 1)
    ]
    last = -sum(amounts)
    if last == 0:  # a zero leg is refused by design; make this one a plain pair
        accounts, amounts, last = accounts[:2], amounts[:1], -amounts[0]
    return Move(
        key=draw(st.integers(min_value=0, max_value=15)),
        legs=tuple(zip(accounts, [*amounts, last], strict=True)),
    )


class _Rollback(Exception):
    pass


@pytest.mark.django_db
@pytest.mark.usefixtures("balanced_now")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(moves(), max_size=25))
def test_ledger__any_sequence_of_transfers__keeps_every_invariant(sequence: list[Move]) -> None:
    try:
        with transaction.atomic():
            _run(sequence)
            raise _Rollback()
    except _Rollback:
        pass


def _run(sequence: list[Move]) -> None:
    # given: the accounts, all at zero
    alice, bob = make_user(), make_user()
    accounts = [
        clearing_account_open(),
        wallet_account_open(user_id=alice.pk),
        wallet_account_open(user_id=bob.pk),
        escrow_account_open(reference="redpacket:h"),
        budget_account_open(reference="activity:h"),
    ]
    model = [0] * ACCOUNTS
    used: dict[int, tuple[tuple[int, int], ...]] = {}
    # when: every move is tried, as a model of the ledger says it should go
    for move in sequence:
        legs = [Leg(accounts[index].pk, amount) for index, amount in move.legs]
        canonical = tuple(sorted(move.legs))
        try:
            transfer = ledger_transfer(
                idempotency_key=f"h-{move.key}",
                kind=TransactionKind.ADJUSTMENT,
                reason="hypothesis",
                legs=legs,
            )
        except IdempotencyConflict:
            assert move.key in used
            assert used[move.key] != canonical
            continue
        except InsufficientFunds:
            assert move.key not in used
            assert any(model[i] + amount < 0 for i, amount in move.legs if i != 0)
            continue
        if move.key in used:
            assert transfer.created is False
            assert used[move.key] == canonical
            continue
        assert transfer.created is True
        assert all(model[i] + amount >= 0 for i, amount in move.legs if i != 0)
        used[move.key] = canonical
        for index, amount in move.legs:
            model[index] += amount
    # then
    rows = LedgerAccount.objects.filter(pk__in=[a.pk for a in accounts])
    stored = {account.pk: account.balance for account in rows}
    assert [stored[a.pk] for a in accounts] == model
    for account in accounts:
        postings = Posting.objects.filter(account=account).values_list("amount", flat=True)
        assert stored[account.pk] == sum(postings)
    assert all(balance >= 0 for balance in model[1:])
    report = wallet_reconcile(chunk=2)  # small chunks: the keyset walk crosses boundaries
    assert report.ok, report
    assert report.transactions_checked >= len(used)
