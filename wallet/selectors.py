"""Reads of the wallet. A user's own data needs their ticket; `ledger_balance` is the
system's (other apps check an escrow or a budget with it)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet, Sum
from django.utils import timezone

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from wallet.exceptions import TopUpNotFound, WithdrawalNotFound
from wallet.models import (
    AccountKind,
    LedgerAccount,
    LedgerTransaction,
    Posting,
    TopUp,
    TopUpStatus,
    Withdrawal,
    WithdrawalStatus,
)
from wallet.types import WalletSummary


def topups_used_today(*, user_id: int) -> int:
    """Fen of the user's top-ups of the last 24 hours, but those closed or refused."""
    since = timezone.now() - timedelta(days=1)
    used = TopUp.objects.filter(
        user_id=user_id,
        created_at__gte=since,
        status__in=(TopUpStatus.CREATED, TopUpStatus.PENDING, TopUpStatus.PAID),
    ).aggregate(total=Sum("amount"))["total"]
    return int(used or 0)


def withdrawals_used_today(*, user_id: int) -> int:
    """Fen of the user's withdrawals of the last 24 hours, but those refunded."""
    since = timezone.now() - timedelta(days=1)
    used = (
        Withdrawal.objects.filter(user_id=user_id, created_at__gte=since)
        .exclude(status=WithdrawalStatus.FAILED)
        .aggregate(total=Sum("amount"))["total"]
    )
    return int(used or 0)


def wallet_summary(*, ticket: VerifiedTicket, user_id: int) -> WalletSummary:
    """The balance and what today's limits have used (0 before the first movement)."""
    ticket_require(ticket, user_id=user_id)
    balance = (
        LedgerAccount.objects.filter(kind=AccountKind.WALLET, user_id=user_id)
        .values_list("balance", flat=True)
        .first()
    )
    return WalletSummary(
        user_id=user_id,
        balance=balance or 0,
        topup_used_today=topups_used_today(user_id=user_id),
        withdrawal_used_today=withdrawals_used_today(user_id=user_id),
    )


def wallet_movements(*, ticket: VerifiedTicket, user_id: int) -> QuerySet[Posting]:
    """The wallet's postings, newest first, each with its transaction (the reason)."""
    ticket_require(ticket, user_id=user_id)
    # The account first, then its postings by the (account, id) index, newest first.
    wallet_id = (
        LedgerAccount.objects.filter(kind=AccountKind.WALLET, user_id=user_id)
        .values_list("pk", flat=True)
        .first()
    )
    if wallet_id is None:
        return Posting.objects.none()
    postings = Posting.objects.filter(account_id=wallet_id).select_related("transaction")
    return postings.order_by("-id")


def topup_get(*, ticket: VerifiedTicket, user_id: int, topup_id: int) -> TopUp:
    ticket_require(ticket, user_id=user_id)
    found = TopUp.objects.filter(pk=topup_id, user_id=user_id).first()
    if found is None:
        raise TopUpNotFound()
    return found


def withdrawal_get(*, ticket: VerifiedTicket, user_id: int, withdrawal_id: int) -> Withdrawal:
    ticket_require(ticket, user_id=user_id)
    found = Withdrawal.objects.filter(pk=withdrawal_id, user_id=user_id).first()
    if found is None:
        raise WithdrawalNotFound()
    return found


def ledger_balance(*, account_id: int) -> int:
    """An account's balance as committed (the sum of its postings)."""
    return int(LedgerAccount.objects.values_list("balance", flat=True).get(pk=account_id))


def budget_balance(*, reference: str) -> int:
    """An activity budget's balance by its reference, 0 if it was never opened (a read:
    unlike `budget_account_open`, it opens nothing)."""
    found = LedgerAccount.objects.filter(kind=AccountKind.BUDGET, reference=reference)
    return int(found.values_list("balance", flat=True).first() or 0)


def ledger_keys_present(*, keys: list[str]) -> set[str]:
    """Which of these idempotency keys the ledger holds a transaction under (the
    system's: another app checks that a movement of its own happened, or not)."""
    return set(
        LedgerTransaction.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", flat=True
        )
    )


def ledger_account_is(*, account_id: int, kind: str) -> bool:
    """Whether the ledger has an account of this kind under this id (another app
    checks where it is about to send money)."""
    return LedgerAccount.objects.filter(pk=account_id, kind=kind).exists()
