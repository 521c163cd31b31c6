"""Typed values the wallet's services and selectors take and return."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from wallet.models import LedgerTransaction, TopUp, Withdrawal


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of a transfer: `amount` fen into `account_id` (negative: out of it)."""

    account_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class Transfer:
    transaction: LedgerTransaction
    # False when the idempotency key had been used: `transaction` is the original.
    created: bool


@dataclass(frozen=True, slots=True)
class WalletSummary:
    user_id: int
    balance: int
    topup_used_today: int
    withdrawal_used_today: int


@dataclass(frozen=True, slots=True)
class TopUpResult:
    topup: TopUp
    duplicate: bool


@dataclass(frozen=True, slots=True)
class WithdrawalResult:
    withdrawal: Withdrawal
    duplicate: bool


@dataclass(frozen=True, slots=True)
class NotifyAnswer:
    """What we answer the provider's payment notification (return_code, return_msg)."""

    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class AccountMismatch:
    account_id: int
    kind: str
    balance: int
    postings_sum: int


@dataclass(frozen=True, slots=True)
class UnbalancedTransaction:
    transaction_id: int
    kind: str
    total: int
    postings: int


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What `ledger_reconcile` found. At most `WALLET_RECONCILE_REPORT_MAX` problems of
    each sort are listed; the counts are complete."""

    started_at: dt.datetime
    finished_at: dt.datetime
    accounts_checked: int
    transactions_checked: int
    postings_checked: int
    # Every balance summed: zero in a double-entry ledger.
    total_balance: int
    account_mismatch_count: int
    unbalanced_count: int
    account_mismatches: tuple[AccountMismatch, ...]
    unbalanced_transactions: tuple[UnbalancedTransaction, ...]

    @property
    def ok(self) -> bool:
        return (
            self.account_mismatch_count == 0
            and self.unbalanced_count == 0
            and self.total_balance == 0
        )
