"""The operators' admin for features (staff only): rules, schedules, the kill switch,
the rollout guard's settings and last verdict, a preview of how many users each
rule covers before saving, and the audit trail of every change, shown per feature.

Nothing is saved by Django's model saving: the form and its inlines become one
spec, written by grayrelease.services (validated, audited, published to every
process, pushed to clients) in the admin's transaction.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html

from grayrelease.admin.actions import FeatureActionsAdmin, operator_of
from grayrelease.admin.changes import FeatureChangeInline
from grayrelease.exceptions import InvalidRule
from grayrelease.forms import (
    RULE_FORMSETS,
    FeatureForm,
    StageForm,
    StageFormSet,
    TimeWindowFormSet,
    VersionRangeFormSet,
)
from grayrelease.models import Feature, RolloutStage, TimeWindow, VersionRange
from grayrelease.rules import percent
from grayrelease.selectors import feature_preview
from grayrelease.services import features
from grayrelease.services.features import feature_spec_validate
from grayrelease.types import FeatureSpec
from wechat_core.errors import ServiceError


class VersionRangeInline(admin.TabularInline[VersionRange, Feature]):
    model = VersionRange
    formset = VersionRangeFormSet
    extra = 0
    verbose_name_plural = "Client-version ranges (none: every version)"


class TimeWindowInline(admin.TabularInline[TimeWindow, Feature]):
    model = TimeWindow
    formset = TimeWindowFormSet
    extra = 0
    verbose_name_plural = "Time windows (none: always)"


class StageInline(admin.TabularInline[RolloutStage, Feature]):
    model = RolloutStage
    form = StageForm
    formset = StageFormSet
    fields = ["percentage", "soak_minutes"]
    extra = 0
    verbose_name_plural = "Rollout schedule (stages, widening; started from the list's actions)"


@admin.register(Feature)
class FeatureAdmin(FeatureActionsAdmin):
    form = FeatureForm
    change_form_template = "admin/grayrelease/feature/change_form.html"
    list_display = [
        "key",
        "client_visible",
        "killed",
        "rollout",
        "schedule_status",
        "guard",
        "revision",
        "updated_at",
    ]
    list_filter = ["client_visible", "killed", "schedule_status", "guarded", "guard_state"]
    search_fields = ["key", "description"]
    inlines = [VersionRangeInline, TimeWindowInline, StageInline, FeatureChangeInline]
    fieldsets = [
        (None, {"fields": ["key", "description", "client_visible", "killed", "percentage"]}),
        (
            "Targeting (empty: everyone)",
            {"fields": ["allow", "deny", "platforms", "datacenters", "campuses"]},
        ),
        (
            "Guarded rollout (pause or roll back when treated users fail more than the control)",
            {
                "fields": [
                    "guarded",
                    "guard_margin",
                    "guard_min_sample",
                    "guard_window_seconds",
                    "guard_action",
                    "guard_verdict",
                ]
            },
        ),
        ("This change", {"fields": ["comment", "expected_revision"]}),
        (
            "State",
            {
                "fields": [
                    "revision",
                    "schedule_status",
                    "stage_position",
                    "stage_started_at",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]
    readonly_fields = [
        "revision",
        "schedule_status",
        "stage_position",
        "stage_started_at",
        "created_at",
        "updated_at",
        "guard_verdict",
    ]

    @admin.display(description="Rollout")
    def rollout(self, feature: Feature) -> str:
        return percent(feature.percentage_bp)

    @admin.display(description="Guard")
    def guard(self, feature: Feature) -> str:
        if not feature.guarded:
            return "-"
        return feature.guard_state or "not judged yet"

    @admin.display(description="Last verdict")
    def guard_verdict(self, feature: Feature) -> str:
        if feature.guard_checked_at is None:
            return "Not judged yet." if feature.guarded else "Not guarded."
        return format_html(
            "<strong>{}</strong> at {}: {}",
            feature.guard_state,
            feature.guard_checked_at.isoformat(timespec="seconds"),
            feature.guard_explanation,
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Feature | None = None) -> list[str]:
        return [*self.readonly_fields, "key"] if obj is not None else list(self.readonly_fields)

    def has_delete_permission(self, request: HttpRequest, obj: Feature | None = None) -> bool:
        return False  # deleting goes through the service (audited): delete_features

    # --- Saving through the services ------------------------------------------------

    def spec_of(self, form: FeatureForm, formsets: list[Any]) -> FeatureSpec:
        parts = {RULE_FORMSETS[f.model]: f.specs() for f in formsets if f.model in RULE_FORMSETS}
        return replace(form.spec(), **parts)

    def save_model(self, request: HttpRequest, obj: Feature, form: Any, change: bool) -> None:
        """Saved with the inlines in save_related, as one change."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        spec = self.spec_of(form, formsets)
        comment = form.cleaned_data.get("comment", "")
        if change:
            saved = features.feature_update(
                key=form.instance.key,
                spec=spec,
                actor=operator_of(request),
                comment=comment,
                expected_revision=form.cleaned_data.get("expected_revision"),
            )
        else:
            saved = features.feature_create(spec=spec, actor=operator_of(request), comment=comment)
        form.instance.pk, form.instance.revision = saved.pk, saved.revision
        for formset in formsets:  # the admin's change message reads these
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceError as error:  # e.g. a save that raced another operator's
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    # --- Preview -------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        preview = self.admin_site.admin_view(self.preview_view)
        return [
            path("preview/", preview, name="grayrelease_feature_preview_add"),
            path("<path:object_id>/preview/", preview, name="grayrelease_feature_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest, object_id: str | None = None) -> HttpResponse:
        """The coverage of the rules in the submitted form (nothing is saved)."""
        if request.method != "POST":
            raise Http404
        obj = self.get_object(request, unquote(object_id)) if object_id else None
        if object_id and obj is None:
            raise Http404
        allowed = (
            self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        )
        if not allowed:
            raise PermissionDenied
        form = self.get_form(request, obj, change=obj is not None)(request.POST, instance=obj)
        formsets, _ = self._create_formsets(  # type: ignore[attr-defined]
            request, form.instance, change=obj is not None
        )
        context: dict[str, Any] = {"errors": []}
        if form.is_valid() and all(f.is_valid() for f in formsets):
            try:
                context["preview"] = feature_preview(
                    spec=feature_spec_validate(self.spec_of(cast(FeatureForm, form), formsets))
                )
            except InvalidRule as error:
                context["errors"] = [error.message]
        else:
            context["errors"] = [
                f"{name}: {'; '.join(str(e) for e in errors)}"
                for name, errors in form.errors.items()
            ] + [str(e) for f in formsets for e in f.non_form_errors()]
            context["errors"] += [
                f"{f.prefix}: {'; '.join(m for msgs in err.values() for m in msgs)}"
                for f in formsets
                for err in f.errors
                if err
            ]
        return TemplateResponse(request, "admin/grayrelease/feature/preview.html", context)
