"""The ledger (double-entry, in integer fen) and the provider orders that move money
in and out of it (docs/wallet.md).

- A `LedgerAccount` holds money: a user's wallet, a red packet's escrow, an
  activity budget, the provider's clearing account, one withdrawal in flight.
  Its `balance` is kept by the database from its postings (triggers of migration
  0002); code never writes it. Only the clearing account may go below zero.
- A `LedgerTransaction` is one movement of money, unique by its idempotency key.
  Its `Posting`s are signed amounts (positive: into the account) that sum to
  zero. Transactions and postings are append-only, in the database too.
- `TopUp` and `Withdrawal` are orders at the payment provider: mutable state
  machines whose money moves only through ledger transactions.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class AccountKind(models.TextChoices):
    WALLET = "wallet", "User wallet"
    ESCROW = "escrow", "Escrow"
    BUDGET = "budget", "Activity budget"
    CLEARING = "clearing", "Provider clearing"
    WITHDRAWING = "withdrawing", "Withdrawal in flight"


class LedgerAccount(models.Model):
    kind = models.CharField(max_length=16, choices=AccountKind.choices)
    # Wallets belong to a user; every other account is named by its reference
    # ("redpacket:17", "activity:3", "sandbox", "withdrawal:42").
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="ledger_accounts",
    )
    reference = models.CharField(max_length=64, blank=True, default="")
    balance = models.BigIntegerField(default=0, editable=False)
    may_go_negative = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(balance__gte=0) | Q(may_go_negative=True),
                name="ledger_account_balance_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(may_go_negative=False) | Q(kind=AccountKind.CLEARING),
                name="ledger_account_only_clearing_negative",
            ),
            models.CheckConstraint(
                condition=(Q(kind=AccountKind.WALLET) & Q(user__isnull=False) & Q(reference=""))
                | (~Q(kind=AccountKind.WALLET) & Q(user__isnull=True) & ~Q(reference="")),
                name="ledger_account_owner",
            ),
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(kind=AccountKind.WALLET),
                name="ledger_account_one_wallet_per_user",
            ),
            models.UniqueConstraint(
                fields=["kind", "reference"],
                condition=~Q(kind=AccountKind.WALLET),
                name="ledger_account_unique_reference",
            ),
        ]

    def __str__(self) -> str:
        owner = f"user {self.user_id}" if self.user_id else self.reference
        return f"{self.get_kind_display()} {owner} ({self.balance} fen)"


class TransactionKind(models.TextChoices):
    TOPUP = "topup", "Top-up"
    WITHDRAWAL = "withdrawal", "Withdrawal"
    WITHDRAWAL_SETTLED = "withdrawal_settled", "Withdrawal paid out"
    WITHDRAWAL_REFUND = "withdrawal_refund", "Withdrawal refunded"
    PACKET_SEND = "packet_send", "Red packet sent"
    PACKET_GRAB = "packet_grab", "Red packet received"
    PACKET_REFUND = "packet_refund", "Red packet refunded"
    BUDGET_FUND = "budget_fund", "Activity budget funded"
    BUDGET_PAYOUT = "budget_payout", "Activity prize"
    BUDGET_SETTLE = "budget_settle", "Activity budget settled"
    ADJUSTMENT = "adjustment", "Adjustment"


class LedgerTransaction(models.Model):
    idempotency_key = models.CharField(max_length=128, unique=True)
    kind = models.CharField(max_length=24, choices=TransactionKind.choices)
    # What the owner of a wallet reads in their history ("Top-up", "Red packet from Bob").
    reason = models.CharField(max_length=200)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind}: {self.reason}"


class Posting(models.Model):
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="postings"
    )
    # Indexed together with the id below (a wallet's history, newest first).
    account = models.ForeignKey(
        LedgerAccount, on_delete=models.PROTECT, related_name="postings", db_index=False
    )
    # Fen; positive adds to the account's balance, negative takes from it.
    amount = models.BigIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="posting_amount_not_zero"),
        ]
        indexes = [models.Index(fields=["account", "id"], name="posting_account_id")]

    def __str__(self) -> str:
        return f"{self.amount:+d} fen to account {self.account_id}"


class TopUpStatus(models.TextChoices):
    CREATED = "created", "Recorded; the provider's order is not placed yet"
    PENDING = "pending", "Waiting for the payment"
    PAID = "paid", "Paid and credited"
    CLOSED = "closed", "Closed unpaid"
    ANOMALY = "anomaly", "Refused: the provider's report disagrees (operators look)"


class TopUp(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    client_id = models.CharField(max_length=64)
    amount = models.BigIntegerField()
    # Our order number at the provider (out_trade_no, at most 32 characters).
    out_trade_no = models.CharField(max_length=32, unique=True)
    status = models.CharField(
        max_length=8, choices=TopUpStatus.choices, default=TopUpStatus.CREATED
    )
    prepay_id = models.CharField(max_length=64, blank=True, default="")
    pay_url = models.URLField(max_length=500, blank=True, default="")
    provider_transaction_id = models.CharField(max_length=32, blank=True, default="")
    ledger_transaction = models.OneToOneField(
        LedgerTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    failure_reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # When the provider was last asked about this order (the sweep of lost notifies).
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "client_id"], name="topup_unique_client_id"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="topup_amount_positive"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="topup_status_created")]

    def __str__(self) -> str:
        return f"top-up {self.out_trade_no} ({self.amount} fen, {self.status})"


class WithdrawalStatus(models.TextChoices):
    PENDING = "pending", "Held; not sent to the provider yet"
    PROCESSING = "processing", "Sent; the provider's answer is awaited"
    SUCCEEDED = "succeeded", "Paid out"
    FAILED = "failed", "Refused by the provider; refunded to the wallet"


class Withdrawal(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    client_id = models.CharField(max_length=64)
    amount = models.BigIntegerField()
    # Our transfer number at the provider (partner_trade_no).
    partner_trade_no = models.CharField(max_length=32, unique=True)
    status = models.CharField(
        max_length=10, choices=WithdrawalStatus.choices, default=WithdrawalStatus.PENDING
    )
    # The account that holds this withdrawal's money while it is in flight.
    hold_account = models.OneToOneField(LedgerAccount, on_delete=models.PROTECT, related_name="+")
    payment_no = models.CharField(max_length=64, blank=True, default="")
    failure_code = models.CharField(max_length=32, blank=True, default="")
    failure_message = models.CharField(max_length=200, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "client_id"], name="withdrawal_unique_client_id"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="withdrawal_amount_positive"),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="withdrawal_status_created")]

    def __str__(self) -> str:
        return f"withdrawal {self.partner_trade_no} ({self.amount} fen, {self.status})"
