"""The ledger's invariants held by PostgreSQL itself, whatever code runs: postings and
transactions are append-only, a balance is the sum of its postings and never
negative, and each transaction sums to zero (checked at commit)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from tests.factories import fund_wallet, make_user
from wallet.models import LedgerAccount, LedgerTransaction, Posting, TransactionKind
from wallet.services.ledger import escrow_account_open, ledger_transfer
from wallet.types import Leg

pytestmark = pytest.mark.django_db


def _sql(statement: str, params: list[int] | None = None) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)


def _write_raw(key: str, legs: list[tuple[LedgerAccount, int]], *, commit: bool) -> None:
    """Write a ledger transaction by hand, as code that skips the service would; with
    `commit`, check what the commit would (the test's own transaction never commits)."""
    with transaction.atomic():
        written = LedgerTransaction.objects.create(
            idempotency_key=key, kind="adjustment", reason="r"
        )
        Posting.objects.bulk_create(
            Posting(transaction=written, account=account, amount=amount) for account, amount in legs
        )
        if commit:
            _sql("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.fixture
def moved() -> tuple[LedgerAccount, LedgerAccount, LedgerTransaction]:
    wallet = fund_wallet(make_user(), 1000)
    escrow = escrow_account_open(reference="redpacket:db")
    transfer = ledger_transfer(
        idempotency_key="db-1",
        kind=TransactionKind.PACKET_SEND,
        reason="r",
        legs=[Leg(wallet.pk, -400), Leg(escrow.pk, 400)],
    )
    return wallet, escrow, transfer.transaction


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE wallet_posting SET amount = amount * 2 WHERE transaction_id = %s",
        "DELETE FROM wallet_posting WHERE transaction_id = %s",
        "UPDATE wallet_ledgertransaction SET reason = 'rewritten' WHERE id = %s",
        "DELETE FROM wallet_ledgertransaction WHERE id = %s",
    ],
)
def test_database__changing_a_written_posting_or_transaction__is_refused(
    moved: tuple[LedgerAccount, LedgerAccount, LedgerTransaction], statement: str
) -> None:
    # given
    _, _, written = moved
    before = list(Posting.objects.filter(transaction=written).values_list("amount", flat=True))
    # when / then
    with pytest.raises(DatabaseError, match="append-only"):
        _sql(statement, [written.pk])
    after = list(Posting.objects.filter(transaction=written).values_list("amount", flat=True))
    assert after == before


def test_database__setting_a_balance_directly__is_refused(
    moved: tuple[LedgerAccount, LedgerAccount, LedgerTransaction],
) -> None:
    wallet, _, _ = moved
    with pytest.raises(DatabaseError, match="only through postings"):
        _sql("UPDATE wallet_ledgeraccount SET balance = 1000000 WHERE id = %s", [wallet.pk])
    wallet.refresh_from_db()
    assert wallet.balance == 600


def test_database__an_account_opened_with_money__is_refused() -> None:
    with pytest.raises(IntegrityError, match="zero balance"):
        _sql(
            "INSERT INTO wallet_ledgeraccount (kind, reference, balance, may_go_negative, "
            "created_at) VALUES ('escrow', 'forged', 500, false, now())"
        )


def test_database__a_posting_that_overdraws__fails_in_its_statement(
    moved: tuple[LedgerAccount, LedgerAccount, LedgerTransaction],
) -> None:
    # given: code that skips the service's check and writes postings itself
    wallet, escrow, _ = moved
    # when / then: the balance's CHECK refuses it
    with pytest.raises(IntegrityError, match="ledger_account_balance_not_negative"):
        _write_raw("db-raw", [(wallet, -601), (escrow, 601)], commit=False)
    wallet.refresh_from_db()
    assert wallet.balance == 600


def test_database__an_unbalanced_transaction__fails_when_it_commits(
    moved: tuple[LedgerAccount, LedgerAccount, LedgerTransaction],
) -> None:
    # given: postings written by hand that do not sum to zero
    wallet, escrow, _ = moved
    # when / then: it would commit
    with pytest.raises(IntegrityError, match="does not balance"):
        _write_raw("db-unbalanced", [(wallet, -100), (escrow, 99)], commit=True)
    wallet.refresh_from_db()
    assert wallet.balance == 600


def test_database__a_transaction_without_postings__fails_when_it_commits() -> None:
    with pytest.raises(IntegrityError, match="does not balance"):
        _write_raw("db-empty", [], commit=True)


def test_database__a_posting_of_zero__is_refused(
    moved: tuple[LedgerAccount, LedgerAccount, LedgerTransaction],
) -> None:
    wallet, escrow, _ = moved
    with pytest.raises(IntegrityError, match="posting_amount_not_zero"):
        _write_raw("db-zero", [(wallet, 0), (escrow, 0)], commit=False)


def test_database__a_balance__is_the_sum_of_its_postings(
    moved: tuple[LedgerAccount, LedgerAccount, LedgerTransaction],
) -> None:
    for account in moved[:2]:
        account.refresh_from_db()
        postings = Posting.objects.filter(account=account).values_list("amount", flat=True)
        assert account.balance == sum(postings)
