"""The operators' admin for official accounts, pools, keyword replies, templates,
and read-only views of followers, deliveries and mass jobs (staff only).

Creating an account goes through publicplatform.services.accounts (it needs a
service identity and credentials); the server configuration is the developer's,
set and verified in the developer console, so it is read-only here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.forms import ModelForm
from django.http import HttpRequest

from accounts.services.registration import service_identity_rename
from publicplatform.models import (
    AutoReply,
    Follower,
    MassJob,
    MessageTemplate,
    OfficialAccount,
    Pool,
    PoolMember,
    WebhookAttempt,
    WebhookDelivery,
)
from publicplatform.services.accounts import account_create


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AutoReplyInline(admin.TabularInline[AutoReply, OfficialAccount]):
    model = AutoReply
    extra = 0


@admin.register(OfficialAccount)
class OfficialAccountAdmin(admin.ModelAdmin[OfficialAccount]):
    list_display = [
        "name",
        "appid",
        "original_id",
        "owner",
        "is_verified",
        "is_active",
        "server_verified_at",
    ]
    list_filter = ["is_verified", "is_active", "encryption_mode"]
    search_fields = ["name", "appid", "original_id"]
    raw_id_fields = ["owner"]
    fields = [
        "name",
        "description",
        "owner",
        "is_verified",
        "is_active",
        "open_platform_id",
        "greeting",
        "appid",
        "original_id",
        "service_user",
        "server_url",
        "encryption_mode",
        "server_verified_at",
        "menu",
        "created_at",
    ]
    readonly_fields = [
        "appid",
        "original_id",
        "service_user",
        "server_url",
        "encryption_mode",
        "server_verified_at",
        "menu",
        "created_at",
    ]
    inlines = [AutoReplyInline]

    def save_model(
        self,
        request: HttpRequest,
        obj: OfficialAccount,
        form: ModelForm[OfficialAccount],
        change: bool,
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            service_identity_rename(user_id=obj.service_user_id, nickname=obj.name)
            return
        created = account_create(
            name=obj.name, owner_id=obj.owner_id, description=obj.description, greeting=obj.greeting
        )
        for name in (
            "pk",
            "appid",
            "secret_hash",
            "original_id",
            "service_user_id",
            "token",
            "created_at",
        ):
            setattr(obj, name, getattr(created.account, name))
        obj._state.adding = False
        obj.save()
        messages.warning(
            request,
            f"AppSecret of {obj.appid}: {created.secret} (shown only now; hand it over).",
        )


class PoolMemberInline(admin.TabularInline[PoolMember, Pool]):
    model = PoolMember
    raw_id_fields = ["account"]
    extra = 1


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin[Pool]):
    list_display = ["name", "is_active"]
    inlines = [PoolMemberInline]


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin[MessageTemplate]):
    list_display = ["title", "template_id", "account"]
    raw_id_fields = ["account"]


@admin.register(Follower)
class FollowerAdmin(ReadOnlyAdmin):
    list_display = [
        "openid",
        "account",
        "user",
        "subscribed",
        "subscribed_at",
        "last_interaction_at",
    ]
    list_filter = ["subscribed"]
    search_fields = ["openid"]


class AttemptInline(admin.TabularInline[WebhookAttempt, WebhookDelivery]):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = [
        "number",
        "started_at",
        "latency_ms",
        "status_code",
        "outcome",
        "detail",
        "response_excerpt",
        "url",
    ]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["id", "account", "msg_type", "event", "status", "attempt_count", "created_at"]
    list_filter = ["status", "msg_type"]
    inlines = [AttemptInline]


@admin.register(MassJob)
class MassJobAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "account",
        "msg_type",
        "status",
        "total_count",
        "sent_count",
        "error_count",
        "created_at",
    ]
    list_filter = ["status"]
