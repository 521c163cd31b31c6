"""Operators edit alert rules, channels and silences here; alerts, notifications and
traffic-guard blocks are read-only records, and so are the rules another app
judges, but for their switch (staff only, like the whole admin)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from monitoring.exceptions import InvalidAlertRule
from monitoring.models import (
    Alert,
    AlertEvent,
    AlertRule,
    GuardBlock,
    Notification,
    NotificationChannel,
    Silence,
)
from monitoring.services.alerts import alert_rule_check
from monitoring.services.trafficguard import guard_unblock


class AlertRuleForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = AlertRule
        fields = [
            "name",
            "description",
            "enabled",
            "metric",
            "labels",
            "aggregation",
            "numerator_labels",
            "bucket_bound",
            "window_seconds",
            "comparison",
            "threshold",
            "history_offset",
            "min_volume",
            "for_seconds",
            "severity",
        ]

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        if self.instance.source:  # only `enabled` is on the form
            return data
        if self.errors:
            return data  # a field is already refused; judge the rule once it parses
        try:
            alert_rule_check(
                metric=data.get("metric") or "",
                aggregation=data.get("aggregation") or "",
                labels=data.get("labels") or {},
                numerator_labels=data.get("numerator_labels") or {},
                bucket_bound=data.get("bucket_bound"),
                comparison=data.get("comparison") or "",
                history_offset=data.get("history_offset"),
            )
        except InvalidAlertRule as error:
            raise forms.ValidationError({error.details["field"]: error.message}) from error
        return data


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin[AlertRule]):
    form = AlertRuleForm
    list_display = [
        "name",
        "enabled",
        "metric",
        "aggregation",
        "comparison",
        "threshold",
        "window_seconds",
        "for_seconds",
        "severity",
    ]
    list_filter = ["enabled", "severity", "source"]
    search_fields = ["name", "metric"]

    def get_readonly_fields(self, request: HttpRequest, obj: AlertRule | None = None) -> list[str]:
        """Rules another app judges (a rollout guard) are that app's to change; here
        they can only be switched off."""
        if obj is not None and obj.source:
            return [f for f in AlertRuleForm.Meta.fields if f != "enabled"]
        return []


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin[NotificationChannel]):
    list_display = ["name", "kind", "min_severity", "enabled"]


@admin.register(Silence)
class SilenceAdmin(admin.ModelAdmin[Silence]):
    list_display = ["__str__", "rule", "starts_at", "ends_at", "comment", "created_by"]
    readonly_fields = ["created_by"]

    def save_model(self, request: HttpRequest, obj: Silence, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)


class AlertEventInline(admin.TabularInline[AlertEvent, Alert]):
    model = AlertEvent
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "at", "value", "message"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnly:
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnly, admin.ModelAdmin[Alert]):
    list_display = ["rule", "state", "started_at", "fired_at", "ended_at", "value", "notified"]
    list_filter = ["state", "rule"]
    inlines = [AlertEventInline]


@admin.register(Notification)
class NotificationAdmin(ReadOnly, admin.ModelAdmin[Notification]):
    list_display = ["alert", "channel", "kind", "status", "attempts", "sent_at"]
    list_filter = ["status", "kind", "channel"]


@admin.register(GuardBlock)
class GuardBlockAdmin(ReadOnly, admin.ModelAdmin[GuardBlock]):
    list_display = ["identity", "endpoint", "repeats", "created_at", "until"]
    search_fields = ["identity", "endpoint"]
    actions = ["unblock"]

    @admin.action(description="End these blocks now")
    def unblock(self, request: HttpRequest, queryset: QuerySet[GuardBlock]) -> None:
        ended = sum(
            guard_unblock(identity=i) for i in set(queryset.values_list("identity", flat=True))
        )
        self.message_user(request, f"Ended {ended} block(s).", messages.SUCCESS)
