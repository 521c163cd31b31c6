"""Reconciliation: a clean ledger passes; a ledger corrupted behind the triggers' back
(as a bug in the database layer or a restore gone wrong would) is reported."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tests.factories import fund_wallet, make_user
from wallet.models import LedgerTransaction, Posting, TransactionKind
from wallet.reconcile import wallet_reconcile
from wallet.services.ledger import escrow_account_open, ledger_transfer
from wallet.types import Leg

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger() -> list[int]:
    """Three wallets funded and a red packet sent: 5 accounts, 4 transactions."""
    wallets = [fund_wallet(make_user(), 1000) for _ in range(3)]
    escrow = escrow_account_open(reference="redpacket:r")
    ledger_transfer(
        idempotency_key="r-send",
        kind=TransactionKind.PACKET_SEND,
        reason="r",
        legs=[Leg(wallets[0].pk, -300), Leg(escrow.pk, 300)],
    )
    return [wallet.pk for wallet in wallets]


def _behind_the_triggers(statement: str, params: list[int]) -> None:
    """Change the ledger with no trigger firing (as replication does; superuser only;
    the test's transaction is rolled back). The checks already due at commit run
    first, so that only reconciliation sees what is changed."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(statement, params)
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


@pytest.mark.parametrize("chunk", [1, 2, 10_000])
def test_wallet_reconcile__clean_ledger__is_ok_in_any_chunk_size(
    ledger: list[int], chunk: int
) -> None:
    report = wallet_reconcile(chunk=chunk)
    assert report.ok
    # 3 wallets, the clearing account, the escrow; 4 transactions of 2 postings
    assert (report.accounts_checked, report.transactions_checked) == (5, 4)
    assert report.postings_checked == 8
    assert report.total_balance == 0


def test_wallet_reconcile__a_balance_that_is_not_its_postings__is_reported(
    ledger: list[int],
) -> None:
    _behind_the_triggers(
        "UPDATE wallet_ledgeraccount SET balance = balance + 5 WHERE id = %s", [ledger[1]]
    )
    report = wallet_reconcile(chunk=2)
    assert not report.ok
    assert report.account_mismatch_count == 1
    [mismatch] = report.account_mismatches
    assert (mismatch.account_id, mismatch.balance, mismatch.postings_sum) == (ledger[1], 1005, 1000)
    assert report.total_balance == 5


def test_wallet_reconcile__a_transaction_that_does_not_sum_to_zero__is_reported(
    ledger: list[int],
) -> None:
    # given: one posting of a transaction is doubled, balances following it
    posting = Posting.objects.filter(account_id=ledger[2]).get()
    _behind_the_triggers(
        "UPDATE wallet_posting SET amount = amount * 2 WHERE id = %s", [posting.pk]
    )
    _behind_the_triggers(
        "UPDATE wallet_ledgeraccount SET balance = 2000 WHERE id = %s", [ledger[2]]
    )
    # when
    report = wallet_reconcile()
    # then
    assert report.unbalanced_count == 1
    [unbalanced] = report.unbalanced_transactions
    assert (unbalanced.transaction_id, unbalanced.total, unbalanced.postings) == (
        posting.transaction_id,
        1000,
        2,
    )
    assert report.account_mismatch_count == 0


def test_wallet_reconcile__a_transaction_without_postings__is_reported(ledger: list[int]) -> None:
    _behind_the_triggers(
        "INSERT INTO wallet_ledgertransaction (idempotency_key, kind, reason, metadata, "
        "created_at) VALUES ('r-empty', 'adjustment', 'r', '{}', now())",
        [],
    )
    empty = LedgerTransaction.objects.get(idempotency_key="r-empty")
    report = wallet_reconcile()
    assert [(u.transaction_id, u.postings) for u in report.unbalanced_transactions] == [
        (empty.pk, 0)
    ]


def test_wallet_reconcile_command__prints_the_report_and_fails_on_a_problem(
    ledger: list[int],
) -> None:
    out = io.StringIO()
    call_command("wallet_reconcile", stdout=out)
    assert '"ok": true' in out.getvalue()
    _behind_the_triggers("UPDATE wallet_ledgeraccount SET balance = 0 WHERE id = %s", [ledger[0]])
    with pytest.raises(CommandError):
        call_command("wallet_reconcile", "--chunk", "3", stdout=io.StringIO())
