"""Admin for the topology: data centres, campuses and the audited blocking switch;
and the replication entries parked here."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.http import HttpRequest

from wechat_core.models import Campus, CampusBlockEvent, DataCenter, ParkedEntry
from wechat_core.replication.log import parked_entry_replay
from wechat_core.services import campus_save, campus_set_blocked


def _operator(request: HttpRequest) -> AbstractBaseUser | None:
    return request.user if isinstance(request.user, AbstractBaseUser) else None


@admin.register(DataCenter)
class DataCenterAdmin(admin.ModelAdmin[DataCenter]):
    list_display = ["code", "name", "created_at"]


class CampusForm(forms.ModelForm[Campus]):
    reason = forms.CharField(
        max_length=200,
        required=False,
        help_text="Why the blocking switch changes; kept in the audit trail.",
    )

    class Meta:
        model = Campus
        fields = ["code", "datacenter", "name", "endpoints", "blocked"]


class CampusBlockEventInline(admin.TabularInline[CampusBlockEvent, Campus]):
    model = CampusBlockEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ("created_at", "blocked", "actor_label", "reason")
    verbose_name_plural = "Blocking switch audit trail"

    def has_add_permission(self, request: HttpRequest, obj: Campus | None = None) -> bool:
        return False


@admin.register(Campus)
class CampusAdmin(admin.ModelAdmin[Campus]):
    form = CampusForm
    list_display = [
        "code",
        "name",
        "datacenter",
        "blocked",
        "blocked_changed_at",
        "blocked_changed_by",
    ]
    list_filter = ["datacenter", "blocked"]
    readonly_fields = ["blocked_changed_at", "blocked_changed_by"]
    inlines = [CampusBlockEventInline]
    actions = ["block", "unblock"]

    def save_model(self, request: HttpRequest, obj: Campus, form: Any, change: bool) -> None:
        reason = form.cleaned_data.get("reason", "")
        campus_save(campus=obj, actor=_operator(request), reason=reason)

    def _set(self, request: HttpRequest, queryset: QuerySet[Campus], blocked: bool) -> None:
        for campus in queryset:
            campus_set_blocked(
                code=campus.code,
                blocked=blocked,
                actor=_operator(request),
                reason="admin list action",
            )
        verb = "Blocked" if blocked else "Unblocked"
        self.message_user(request, f"{verb} {queryset.count()} campuses.", messages.SUCCESS)

    @admin.action(description="Block selected campuses")
    def block(self, request: HttpRequest, queryset: QuerySet[Campus]) -> None:
        self._set(request, queryset, True)

    @admin.action(description="Unblock selected campuses")
    def unblock(self, request: HttpRequest, queryset: QuerySet[Campus]) -> None:
        self._set(request, queryset, False)


@admin.register(CampusBlockEvent)
class CampusBlockEventAdmin(admin.ModelAdmin[CampusBlockEvent]):
    list_display = ["created_at", "campus", "blocked", "actor_label", "reason"]
    list_filter = ["campus", "blocked"]
    readonly_fields = ["campus", "blocked", "actor", "actor_label", "reason", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: CampusBlockEvent | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: CampusBlockEvent | None = None
    ) -> bool:
        return False


@admin.register(ParkedEntry)
class ParkedEntryAdmin(admin.ModelAdmin[ParkedEntry]):
    """Replication entries that failed every attempt (docs/deploy.md): read the
    error, fix its cause, then replay them; those waiting behind one (`behind`)
    are applied after it by themselves."""

    list_display = ["origin", "position", "kind", "behind", "parked_at", "error"]
    list_filter = ["origin", "kind"]
    readonly_fields = ["origin", "position", "kind", "payload", "written_at", "error",
                       "parked_at", "keys", "behind"]  # fmt: skip
    actions = ["replay"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Replay selected entries (their cause fixed)")
    def replay(self, request: HttpRequest, queryset: QuerySet[ParkedEntry]) -> None:
        done = 0
        for parked in queryset.order_by("origin", "position"):
            try:
                done += parked_entry_replay(parked_id=parked.pk)
            except ParkedEntry.DoesNotExist:
                continue  # applied already, after the one it waited behind
            except Exception as error:
                self.message_user(request, f"{parked}: {error}", messages.ERROR)
        self.message_user(request, f"Replayed {done} entries.", messages.SUCCESS)
