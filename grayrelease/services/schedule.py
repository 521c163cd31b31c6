"""Rollout schedules: a feature's stages (1 % → 5 % → 20 % → 50 % → 100 %, each with
a minimum soak time), started, paused and resumed by operators and advanced by
Celery beat (grayrelease.tasks.advance_rollout_stages).

A running schedule widens the rollout to the next stage once the current one
has soaked for its minimum time, one stage per tick; reaching the last stage
completes it. Operators stay in charge: a hand-set percentage or the kill
switch pauses it, and new stages reset it (services.features).
"""

from __future__ import annotations

import datetime as dt
from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from grayrelease.exceptions import ScheduleRefused
from grayrelease.models import ChangeAction, Feature, RolloutStage, ScheduleStatus
from grayrelease.rules import percent
from grayrelease.services.changes import SCHEDULE_ACTOR, feature_commit
from grayrelease.services.features import feature_lock
from grayrelease.specs import feature_state

_SCHEDULE_FIELDS = [
    "schedule_status",
    "stage_position",
    "stage_started_at",
    "percentage_bp",
    "guard_since",
]


def _stages(feature: Feature) -> list[RolloutStage]:
    return list(feature.stages.order_by("position"))


@transaction.atomic
def feature_schedule_start(
    *, key: str, actor: AbstractBaseUser | None, comment: str = ""
) -> Feature:
    """Start at the first stage that does not narrow the rollout as it stands."""
    feature = feature_lock(key=key)
    stages = _stages(feature)
    if not stages:
        raise ScheduleRefused(f"{key} has no stages: add them first.")
    if feature.killed:
        raise ScheduleRefused(f"{key} is killed: release the kill switch first.")
    if feature.schedule_status == ScheduleStatus.RUNNING:
        raise ScheduleRefused(f"The schedule of {key} is running already.")
    start = next((s for s in stages if s.percentage_bp >= feature.percentage_bp), None)
    last = start is not None and start.position == len(stages) - 1
    if start is None or (last and start.percentage_bp == feature.percentage_bp):
        raise ScheduleRefused(
            f"{key} is at {percent(feature.percentage_bp)} already, the last stage or beyond."
        )
    before = feature_state(feature)
    now = timezone.now()
    _enter(feature, start, last=last, now=now)
    feature.guard_since = now  # the guard judges this rollout afresh
    feature_commit(
        feature,
        before=before,
        action=ChangeAction.SCHEDULE_STARTED,
        actor=actor,
        comment=comment,
        update_fields=_SCHEDULE_FIELDS,
    )
    return feature


def _enter(feature: Feature, stage: RolloutStage, *, last: bool, now: dt.datetime) -> None:
    feature.percentage_bp = stage.percentage_bp
    feature.stage_position = stage.position
    feature.stage_started_at = now
    feature.schedule_status = ScheduleStatus.COMPLETED if last else ScheduleStatus.RUNNING


def _set_status(
    key: str,
    *,
    expect: ScheduleStatus,
    to: ScheduleStatus,
    action: ChangeAction,
    actor: AbstractBaseUser | None,
    comment: str,
) -> Feature:
    with transaction.atomic():
        feature = feature_lock(key=key)
        if feature.schedule_status != expect:
            raise ScheduleRefused(
                f"The schedule of {key} is {feature.get_schedule_status_display().lower()}, "
                f"not {expect.label.lower()}."
            )
        if to == ScheduleStatus.RUNNING and feature.killed:
            raise ScheduleRefused(f"{key} is killed: release the kill switch first.")
        before = feature_state(feature)
        feature.schedule_status = to
        if to == ScheduleStatus.RUNNING:  # resumed (after a fix?): fresh evidence
            feature.guard_since = timezone.now()
        feature_commit(
            feature,
            before=before,
            action=action,
            actor=actor,
            comment=comment,
            update_fields=_SCHEDULE_FIELDS,
        )
        return feature


def feature_schedule_pause(
    *, key: str, actor: AbstractBaseUser | None, comment: str = ""
) -> Feature:
    return _set_status(
        key,
        expect=ScheduleStatus.RUNNING,
        to=ScheduleStatus.PAUSED,
        action=ChangeAction.SCHEDULE_PAUSED,
        actor=actor,
        comment=comment,
    )


def feature_schedule_resume(
    *, key: str, actor: AbstractBaseUser | None, comment: str = ""
) -> Feature:
    """Go on; time spent paused counts towards the stage's soak."""
    return _set_status(
        key,
        expect=ScheduleStatus.PAUSED,
        to=ScheduleStatus.RUNNING,
        action=ChangeAction.SCHEDULE_RESUMED,
        actor=actor,
        comment=comment,
    )


def _advance_one(feature_id: int, now: dt.datetime) -> str | None:
    with transaction.atomic():
        feature = Feature.objects.select_for_update(no_key=True).filter(pk=feature_id).first()
        if feature is None or feature.schedule_status != ScheduleStatus.RUNNING:
            return None
        stages = _stages(feature)
        position = feature.stage_position or 0
        current = next((s for s in stages if s.position == position), None)
        if current is None or position + 1 >= len(stages):
            return None
        started = feature.stage_started_at or now
        if now < started + timedelta(minutes=current.soak_minutes):
            return None
        before = feature_state(feature)
        _enter(feature, stages[position + 1], last=position + 2 == len(stages), now=now)
        comment = f"soaked {current.soak_minutes} min at {percent(current.percentage_bp)}"
        feature_commit(
            feature,
            before=before,
            action=ChangeAction.STAGE_ADVANCED,
            actor=None,
            comment=comment,
            update_fields=_SCHEDULE_FIELDS,
            system=SCHEDULE_ACTOR,
        )
        return feature.key


def rollout_stages_advance(*, now: dt.datetime | None = None) -> list[str]:
    """Widen every running rollout whose stage has soaked long enough, by one
    stage; returns the keys advanced. Each feature in its own transaction."""
    moment = now or timezone.now()
    running = Feature.objects.filter(schedule_status=ScheduleStatus.RUNNING).order_by("pk")
    advanced = [_advance_one(pk, moment) for pk in running.values_list("pk", flat=True)]
    return [key for key in advanced if key is not None]
