"""The operators' admin for users, devices, tickets and contacts (staff only).

Writes that carry rules (revoking tickets, disabling accounts) go through
accounts.services.operators; the rest is plain model editing.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone

from accounts.forms import OperatorLoginForm
from accounts.loginpages import admin_login_answering_locks
from accounts.models import Block, Device, FriendRequest, Friendship, Ticket, User, WeChatIdClaim
from accounts.services.operators import (
    operator_revoke_device_tickets,
    operator_revoke_tickets,
    operator_revoke_user_tickets,
    operator_set_active,
)

admin.site.login_form = OperatorLoginForm
admin.site.login = admin_login_answering_locks(admin.site.login)  # type: ignore[method-assign]


class DeviceInline(admin.TabularInline[Device, User]):
    model = Device
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "name",
        "platform",
        "client_version",
        "last_seen_at",
        "last_ip",
        "removed_at",
    )

    def has_add_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(admin.ModelAdmin[User]):
    list_display = [
        "id",
        "nickname",
        "wechat_id",
        "phone",
        "email",
        "home_datacenter",
        "home_campus",
        "is_active",
        "is_staff",
        "date_joined",
    ]
    list_filter = ["is_active", "is_staff", "home_datacenter", "home_campus"]
    search_fields = ["phone", "email", "wechat_id", "nickname"]
    ordering = ["-date_joined"]
    inlines = [DeviceInline]
    actions = ["revoke_all_tickets", "disable_accounts", "enable_accounts"]
    fieldsets = [
        (None, {"fields": ["nickname", "wechat_id", "phone", "email", "avatar"]}),
        ("Profile", {"fields": ["region", "signature"]}),
        (
            "Privacy",
            {
                "fields": [
                    "discoverable_by_phone",
                    "discoverable_by_wechat_id",
                    "discoverable_by_email",
                ]
            },
        ),
        ("Placement", {"fields": ["home_datacenter", "home_campus"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        ("Dates", {"fields": ["date_joined", "last_login"]}),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> list[str]:
        readonly = ["wechat_id", "home_datacenter", "home_campus", "date_joined", "last_login"]
        if not request.user.is_superuser:
            readonly += ["is_staff", "is_superuser", "groups"]
        return readonly

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Accounts are created by registration, createoperator and createdemo.
        return False

    def save_model(
        self, request: HttpRequest, obj: User, form: ModelForm[User], change: bool
    ) -> None:
        if change and "is_active" in form.changed_data:
            active = obj.is_active
            super().save_model(request, obj, form, change)
            operator_set_active(user=obj, active=active)
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke every ticket (log out everywhere)")
    def revoke_all_tickets(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        count = operator_revoke_user_tickets(user_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Revoked {count} live tickets.", messages.SUCCESS)

    @admin.action(description="Disable accounts (and log them out)")
    def disable_accounts(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            operator_set_active(user=user, active=False)
        self.message_user(request, f"Disabled {queryset.count()} accounts.", messages.SUCCESS)

    @admin.action(description="Enable accounts")
    def enable_accounts(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            operator_set_active(user=user, active=True)
        self.message_user(request, f"Enabled {queryset.count()} accounts.", messages.SUCCESS)


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin[Device]):
    list_display = [
        "id",
        "user",
        "name",
        "platform",
        "client_version",
        "last_seen_at",
        "removed_at",
    ]
    list_filter = ["platform", "client_version"]
    search_fields = ["user__phone", "user__email", "user__wechat_id", "name"]
    list_select_related = ["user"]
    readonly_fields = [
        "user",
        "device_uuid",
        "platform",
        "client_version",
        "created_at",
        "last_login_at",
        "last_seen_at",
        "last_ip",
        "removed_at",
    ]
    actions = ["revoke_tickets"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Log out: revoke the devices' tickets")
    def revoke_tickets(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        count = operator_revoke_device_tickets(
            device_ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(request, f"Revoked {count} live tickets.", messages.SUCCESS)


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin[Ticket]):
    """Tickets can be looked at and revoked, never created or read back."""

    list_display = ["id", "user", "device", "created_at", "expires_at", "state", "revoked_reason"]
    list_filter = ["revoked_reason"]
    search_fields = ["user__phone", "user__email", "user__wechat_id"]
    list_select_related = ["user", "device"]
    exclude = ["secret_hash"]
    readonly_fields = ["user", "device", "created_at", "expires_at", "revoked_at", "revoked_reason"]
    actions = ["revoke"]

    @admin.display(description="state")
    def state(self, ticket: Ticket) -> str:
        if ticket.revoked_at is not None:
            return "revoked"
        return "live" if ticket.expires_at > timezone.now() else "expired"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Ticket | None = None) -> bool:
        return False

    @admin.action(description="Revoke selected tickets", permissions=["view"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        count = operator_revoke_tickets(ticket_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Revoked {count} live tickets.", messages.SUCCESS)


@admin.register(WeChatIdClaim)
class WeChatIdClaimAdmin(admin.ModelAdmin[WeChatIdClaim]):
    list_display = ["wechat_id", "user", "datacenter", "claimed_at"]
    search_fields = ["normalized"]
    readonly_fields = ["normalized", "wechat_id", "user", "datacenter", "claimed_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(FriendRequest)
class FriendRequestAdmin(admin.ModelAdmin[FriendRequest]):
    list_display = ["id", "from_user", "to_user", "status", "created_at", "expires_at"]
    list_filter = ["status"]
    search_fields = ["from_user__wechat_id", "to_user__wechat_id", "greeting"]
    list_select_related = ["from_user", "to_user"]
    raw_id_fields = ["from_user", "to_user"]


@admin.register(Friendship)
class FriendshipAdmin(admin.ModelAdmin[Friendship]):
    list_display = ["id", "owner", "friend", "remark", "created_at"]
    search_fields = ["owner__wechat_id", "friend__wechat_id", "remark"]
    list_select_related = ["owner", "friend"]
    raw_id_fields = ["owner", "friend"]


@admin.register(Block)
class BlockAdmin(admin.ModelAdmin[Block]):
    list_display = ["id", "blocker", "blocked", "created_at"]
    search_fields = ["blocker__wechat_id", "blocked__wechat_id"]
    list_select_related = ["blocker", "blocked"]
    raw_id_fields = ["blocker", "blocked"]
