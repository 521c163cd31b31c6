"""The operators' view of the ledger and the provider orders: read-only (staff only).

Money moves only through the services; the database refuses changing a posting
or a transaction anyway. Operators read balances, transactions with their
postings, top-ups and withdrawals (an `anomaly` top-up needs a person)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from wallet.models import LedgerAccount, LedgerTransaction, Posting, TopUp, Withdrawal
from wechat_core.readonlyadmin import ReadOnlyAdmin


class PostingInline(admin.TabularInline[Posting, LedgerTransaction]):
    model = Posting
    extra = 0
    can_delete = False
    fields = readonly_fields = ("account", "amount")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "user", "reference", "balance", "may_go_negative", "created_at"]
    list_filter = ["kind"]
    search_fields = ["reference", "user__email", "user__phone", "user__wechat_id"]
    raw_id_fields = ["user"]


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "reason", "idempotency_key", "created_at"]
    list_filter = ["kind"]
    search_fields = ["idempotency_key", "reason"]
    date_hierarchy = "created_at"
    inlines = [PostingInline]


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "amount", "status", "out_trade_no", "created_at", "paid_at"]
    list_filter = ["status"]
    search_fields = ["out_trade_no", "provider_transaction_id", "user__email"]
    raw_id_fields = ["user", "ledger_transaction"]


@admin.register(Withdrawal)
class WithdrawalAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "user",
        "amount",
        "status",
        "partner_trade_no",
        "failure_code",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status"]
    search_fields = ["partner_trade_no", "payment_no", "user__email"]
    raw_id_fields = ["user", "hold_account"]
