"""The audit trail in the admin: per feature (an inline of its change page) and as
one list of every change, deleted features' included. Read-only: the trail is
written only by grayrelease.services."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from grayrelease.models import Feature, FeatureChange
from grayrelease.specs import change_summary


class FeatureChangeInline(admin.TabularInline[FeatureChange, Feature]):
    model = FeatureChange
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "created_at",
        "actor_label",
        "action",
        "revision",
        "summary",
        "comment",
        "push_status",
        "pushed_users",
    )
    verbose_name_plural = "Audit trail (every change: who, when, before → after)"

    @admin.display(description="Before → after")
    def summary(self, change: FeatureChange) -> str:
        return format_html_join(
            "", "<div>{}</div>", ((line,) for line in change_summary(change.before, change.after))
        )

    def has_add_permission(self, request: HttpRequest, obj: Feature | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(FeatureChange)
class FeatureChangeAdmin(admin.ModelAdmin[FeatureChange]):
    list_display = [
        "created_at",
        "feature_key",
        "revision",
        "action",
        "actor_label",
        "comment",
        "push_status",
        "pushed_users",
    ]
    list_filter = ["action", "push_status"]
    search_fields = ["feature_key", "actor_label", "comment"]
    readonly_fields = [
        "feature_key",
        "revision",
        "action",
        "actor_label",
        "comment",
        "created_at",
        "before_json",
        "after_json",
        "push_status",
        "pushed_users",
    ]
    fields = tuple(readonly_fields)

    @admin.display(description="Before")
    def before_json(self, change: FeatureChange) -> str:
        return format_html("<pre>{}</pre>", json.dumps(change.before, indent=2, ensure_ascii=False))

    @admin.display(description="After")
    def after_json(self, change: FeatureChange) -> str:
        return format_html("<pre>{}</pre>", json.dumps(change.after, indent=2, ensure_ascii=False))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: FeatureChange | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: FeatureChange | None = None) -> bool:
        return False
