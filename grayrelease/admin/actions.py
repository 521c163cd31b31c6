"""The feature list's actions (kill switch, schedules, deletion), each calling a
service per selected feature and reporting what it refused."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import QuerySet
from django.http import HttpRequest

from grayrelease.models import Feature
from grayrelease.services import features, schedule
from grayrelease.specs import STANDARD_STAGES
from wechat_core.errors import ServiceError


def operator_of(request: HttpRequest) -> AbstractBaseUser | None:
    return request.user if isinstance(request.user, AbstractBaseUser) else None


class FeatureActionsAdmin(admin.ModelAdmin[Feature]):
    """FeatureAdmin's base: the list's actions."""

    actions = [
        "kill",
        "revive",
        "standard_schedule",
        "start_schedule",
        "pause_schedule",
        "resume_schedule",
        "delete_features",
    ]

    def _each(
        self, request: HttpRequest, queryset: QuerySet[Feature], verb: str, call: Any
    ) -> None:
        done = 0
        for feature in queryset:
            try:
                call(feature.key)
                done += 1
            except ServiceError as error:
                self.message_user(request, f"{feature.key}: {error.message}", messages.WARNING)
        if done:
            self.message_user(request, f"{verb} {done} feature(s).", messages.SUCCESS)

    @admin.action(description="Kill switch: turn selected features off for everyone")
    def kill(self, request: HttpRequest, queryset: QuerySet[Feature]) -> None:
        actor = operator_of(request)
        self._each(
            request,
            queryset,
            "Killed",
            lambda key: features.feature_set_killed(
                key=key, killed=True, actor=actor, comment="admin: kill switch"
            ),
        )

    @admin.action(description="Release the kill switch of selected features")
    def revive(self, request: HttpRequest, queryset: QuerySet[Feature]) -> None:
        actor = operator_of(request)
        self._each(
            request,
            queryset,
            "Revived",
            lambda key: features.feature_set_killed(
                key=key, killed=False, actor=actor, comment="admin: kill switch released"
            ),
        )

    @admin.action(description="Use the standard schedule: 1 → 5 → 20 → 50 → 100 %%")
    def standard_schedule(self, request: HttpRequest, queryset: QuerySet[Feature]) -> None:
        actor = operator_of(request)
        self._each(
            request,
            queryset,
            "Scheduled",
            lambda key: features.feature_set_stages(
                key=key, stages=STANDARD_STAGES, actor=actor, comment="admin: standard schedule"
            ),
        )

    @admin.action(description="Start the rollout schedule of selected features")
    def start_schedule(self, request: HttpRequest, queryset: QuerySet[Feature]) -> None:
        actor = operator_of(request)
        self._each(
            request,
            queryset,
            "Started",
            lambda key: schedule.feature_schedule_start(key=key, actor=actor),
        )

    @admin.action(description="Pause the rollout schedule of selected features")
    def pause_schedule(self, request: HttpRequest, queryset: QuerySet[Feature]) -> None:
        actor = operator_of(request)
        self._each(
            request,
            queryset,
            "Paused",
            lambda key: schedule.feature_schedule_pause(key=key, actor=actor),
        )

    @admin.action(description="Resume the rollout schedule of selected features")
    def resume_schedule(self, request: HttpRequest, queryset: QuerySet[Feature]) -> None:
        actor = operator_of(request)
        self._each(
            request,
            queryset,
            "Resumed",
            lambda key: schedule.feature_schedule_resume(key=key, actor=actor),
        )

    @admin.action(description="Delete selected features (audited; devices learn they are off)")
    def delete_features(self, request: HttpRequest, queryset: QuerySet[Feature]) -> None:
        actor = operator_of(request)
        self._each(
            request,
            queryset,
            "Deleted",
            lambda key: features.feature_delete(key=key, actor=actor, comment="admin: deleted"),
        )
