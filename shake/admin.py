"""The operators' pages of shake activities: businesses are configured here (name,
endpoint, signing secret, rate, timeout); activities with their rounds (caps, rate,
stagger of the groups), their closes (settlements), coupon deliveries and the
progress of sponsor-asset pushes are read-only (activities are planned and approved
through services.activities, rounds steered and activities closed on the
live-control page; deliveries move only through services.delivery, pushes through
services.assets)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from shake.models import (
    Activity,
    ActivitySettlement,
    AssetPush,
    Business,
    CouponDelivery,
    Round,
)
from wechat_core.readonlyadmin import ReadOnlyAdmin


@admin.register(Business)
class BusinessAdmin(admin.ModelAdmin[Business]):
    list_display = ["id", "name", "endpoint", "rate_per_second", "timeout_seconds", "created_at"]
    search_fields = ["name"]


@admin.register(CouponDelivery)
class CouponDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "prize",
        "business",
        "user",
        "state",
        "attempts",
        "last_outcome",
        "updated_at",
        "delivered_at",
    ]
    list_filter = ["state", "business"]


_ROUND_FIELDS = (
    "title",
    "planned_start",
    "latest_start",
    "duration_seconds",
    "issue_rate",
    "per_user_cap",
    "per_sponsor_cap",
    "stagger_seconds",
    "slices",
)


class RoundInline(admin.TabularInline[Round, Activity]):
    model = Round
    extra = 0
    can_delete = False
    show_change_link = False
    fields = _ROUND_FIELDS
    readonly_fields = _ROUND_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Activity | None = None) -> bool:
        return False


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "approved_at", "budget_fen", "created_at"]
    search_fields = ["name"]
    inlines = [RoundInline]


@admin.register(ActivitySettlement)
class ActivitySettlementAdmin(ReadOnlyAdmin):
    list_display = ["id", "activity", "at", "actor_label", "balance", "held_back", "returned"]
    search_fields = ["activity__name", "actor_label"]


@admin.register(AssetPush)
class AssetPushAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "activity",
        "version",
        "pushed",
        "after_user",
        "updated_at",
        "finished_at",
        "superseded",
    ]
    list_filter = ["superseded"]
