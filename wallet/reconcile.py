"""Reconciliation of the whole ledger (seed 003 对账), in constant memory.

`wallet_reconcile` checks that every account's balance equals the sum of its
postings, that every ledger transaction has at least two postings summing to
zero, and that all balances together sum to zero. It reads accounts and
transactions in chunks of WALLET_RECONCILE_CHUNK by id (keyset), each chunk's
sums computed by the database in one statement, so memory does not grow with
the ledger. On PostgreSQL the whole pass reads one snapshot (REPEATABLE READ)
when called outside a transaction, so transfers committed meanwhile cannot show
as false differences. Red-packet reconciliation builds on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from wallet.models import LedgerAccount, LedgerTransaction, Posting
from wallet.types import AccountMismatch, ReconcileReport, UnbalancedTransaction
from wechat_core.metrics import counter

RECONCILE_PROBLEMS = counter(
    "wallet_reconcile_problems_total",
    "Problems reconciliation found: account_mismatch, unbalanced_transaction, nonzero_total.",
    ["problem"],
)

_ACCOUNTS_CHUNK = """
    SELECT a.id, a.kind, a.balance, COALESCE(SUM(p.amount), 0), COUNT(p.id)
    FROM (SELECT id, kind, balance FROM {accounts} WHERE id > %s ORDER BY id LIMIT %s) a
    LEFT JOIN {postings} p ON p.account_id = a.id
    GROUP BY a.id, a.kind, a.balance
    ORDER BY a.id
"""
_TRANSACTIONS_CHUNK = """
    SELECT t.id, t.kind, COALESCE(SUM(p.amount), 0), COUNT(p.id)
    FROM (SELECT id, kind FROM {transactions} WHERE id > %s ORDER BY id LIMIT %s) t
    LEFT JOIN {postings} p ON p.transaction_id = t.id
    GROUP BY t.id, t.kind
    ORDER BY t.id
"""


def _chunks(sql: str, size: int) -> Iterator[list[tuple[Any, ...]]]:
    query = sql.format(
        accounts=LedgerAccount._meta.db_table,
        transactions=LedgerTransaction._meta.db_table,
        postings=Posting._meta.db_table,
    )
    after = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(query, [after, size])
            rows = cursor.fetchall()
            if not rows:
                return
            yield rows
            after = rows[-1][0]


@contextlib.contextmanager
def _one_snapshot() -> Iterator[None]:
    if connection.in_atomic_block:  # the caller's transaction decides
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def wallet_reconcile(*, chunk: int | None = None) -> ReconcileReport:
    """Check the ledger's invariants over every row; see the module."""
    size = chunk or settings.WALLET_RECONCILE_CHUNK
    listed = settings.WALLET_RECONCILE_REPORT_MAX
    started = timezone.now()
    accounts = transactions = postings = total = 0
    mismatches: list[AccountMismatch] = []
    unbalanced: list[UnbalancedTransaction] = []
    mismatch_count = unbalanced_count = 0
    with _one_snapshot():
        for rows in _chunks(_ACCOUNTS_CHUNK, size):
            for account_id, kind, balance, summed, count in rows:
                accounts, postings, total = accounts + 1, postings + count, total + balance
                if balance != int(summed):
                    mismatch_count += 1
                    if len(mismatches) < listed:
                        mismatches.append(AccountMismatch(account_id, kind, balance, int(summed)))
        for rows in _chunks(_TRANSACTIONS_CHUNK, size):
            for transaction_id, kind, summed, count in rows:
                transactions += 1
                if int(summed) != 0 or count < 2:
                    unbalanced_count += 1
                    if len(unbalanced) < listed:
                        unbalanced.append(
                            UnbalancedTransaction(transaction_id, kind, int(summed), count)
                        )
    report = ReconcileReport(
        started_at=started,
        finished_at=timezone.now(),
        accounts_checked=accounts,
        transactions_checked=transactions,
        postings_checked=postings,
        total_balance=total,
        account_mismatch_count=mismatch_count,
        unbalanced_count=unbalanced_count,
        account_mismatches=tuple(mismatches),
        unbalanced_transactions=tuple(unbalanced),
    )
    _count(report)
    return report


def _count(report: ReconcileReport) -> None:
    if report.account_mismatch_count:
        RECONCILE_PROBLEMS.inc("account_mismatch", amount=report.account_mismatch_count)
    if report.unbalanced_count:
        RECONCILE_PROBLEMS.inc("unbalanced_transaction", amount=report.unbalanced_count)
    if report.total_balance:
        RECONCILE_PROBLEMS.inc("nonzero_total")
