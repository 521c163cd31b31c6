"""The operators' view of red packets, their grabs and the reconciliation reports:
read-only (staff only; the admin site lets only staff in). Money moves only
through the services; `manage.py reconcile_redpackets` redoes what failed."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from redpackets.models import Grab, Packet, ReconciliationReport
from wechat_core.readonlyadmin import ReadOnlyAdmin


class GrabInline(admin.TabularInline[Grab, Packet]):
    model = Grab
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "share_index",
        "user",
        "amount",
        "created_at",
        "credit_state",
        "credited_at",
        "credit_transaction_id",
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Packet)
class PacketAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "sender",
        "conversation_id",
        "kind",
        "total_amount",
        "shares",
        "state",
        "remaining_shares",
        "remaining_amount",
        "refunded_amount",
        "created_at",
        "expires_at",
    ]
    list_filter = ["state", "kind"]
    search_fields = ["client_id", "sender__email", "sender__wechat_id"]
    raw_id_fields = ["sender", "escrow"]
    date_hierarchy = "created_at"
    inlines = [GrabInline]


@admin.register(Grab)
class GrabAdmin(ReadOnlyAdmin):
    list_display = ["id", "packet", "user", "amount", "credit_state", "created_at", "credited_at"]
    list_filter = ["credit_state"]
    search_fields = ["user__email", "user__wechat_id"]
    raw_id_fields = ["packet", "user"]
    date_hierarchy = "created_at"


@admin.register(ReconciliationReport)
class ReconciliationReportAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "started_at",
        "packets_checked",
        "grabs_checked",
        "problems_found",
        "repaired",
        "unresolved",
        "ledger_ok",
    ]
    list_filter = ["ledger_ok"]
    date_hierarchy = "started_at"
