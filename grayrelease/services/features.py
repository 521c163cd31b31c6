"""Creating, editing, killing and deleting features (operators: admin and API).

Every write validates the whole spec (grayrelease.rules.spec_clean, plus the
users the allow and deny lists name), runs in one transaction with the feature
row locked, and goes through services.changes, which audits and publishes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.selectors import users_existing
from grayrelease.exceptions import FeatureChanged, FeatureExists, FeatureNotFound, InvalidRule
from grayrelease.models import (
    ChangeAction,
    Feature,
    RolloutStage,
    ScheduleStatus,
    TimeWindow,
    VersionRange,
)
from grayrelease.rules import spec_clean, spec_to_json, split_targets
from grayrelease.selectors import topology_known
from grayrelease.services.changes import change_record, feature_commit
from grayrelease.specs import feature_spec_of, feature_state
from grayrelease.types import FeatureSpec, StageSpec


def _targets_exist(spec: FeatureSpec) -> None:
    for field, targets in (("allow", spec.allow), ("deny", spec.deny)):
        ids, wechat_ids = split_targets(targets)
        found_ids, found_wechat_ids = users_existing(user_ids=ids, wechat_ids=wechat_ids)
        missing = sorted(str(i) for i in ids - found_ids) + sorted(wechat_ids - found_wechat_ids)
        if missing:
            raise InvalidRule(f"no such user: {', '.join(missing)}.", field=field)


def _guards_within_limit(spec: FeatureSpec) -> None:
    """Each guarded feature is a label value of grayrelease_requests_total: bounded."""
    if spec.guard is None:
        return
    limit = settings.GRAYRELEASE_GUARDED_MAX
    others = Feature.objects.filter(guarded=True).exclude(key=spec.key).count()
    if others >= limit:
        raise InvalidRule(
            f"at most {limit} features may be guarded at once (GRAYRELEASE_GUARDED_MAX); "
            "unguard one that is fully rolled out first.",
            field="guarded",
        )


def feature_spec_validate(spec: FeatureSpec) -> FeatureSpec:
    """The cleaned spec, or InvalidRule (also what the admin's forms call)."""
    topology = topology_known()
    cleaned = spec_clean(spec, datacenters=topology.datacenters, campuses=topology.campuses)
    _targets_exist(cleaned)
    _guards_within_limit(cleaned)
    return cleaned


def _apply(feature: Feature, spec: FeatureSpec) -> None:
    feature.description = spec.description
    feature.client_visible = spec.client_visible
    feature.killed = spec.killed
    feature.percentage_bp = spec.percentage_bp
    feature.allow = list(spec.allow)
    feature.deny = list(spec.deny)
    feature.platforms = list(spec.platforms)
    feature.datacenters = list(spec.datacenters)
    feature.campuses = list(spec.campuses)
    feature.guarded = spec.guard is not None
    if spec.guard is not None:  # unguarding keeps the settings for next time
        feature.guard_margin_bp = spec.guard.margin_bp
        feature.guard_min_sample = spec.guard.min_sample
        feature.guard_window_seconds = spec.guard.window_seconds
        feature.guard_action = spec.guard.action


def _write_children(feature: Feature, spec: FeatureSpec) -> None:
    feature.version_ranges.all().delete()
    feature.time_windows.all().delete()
    feature.stages.all().delete()
    VersionRange.objects.bulk_create(
        VersionRange(
            feature=feature, min_version=r.min_version or "", max_version=r.max_version or ""
        )
        for r in spec.version_ranges
    )
    TimeWindow.objects.bulk_create(
        TimeWindow(feature=feature, starts_at=w.starts_at, ends_at=w.ends_at)
        for w in spec.time_windows
    )
    RolloutStage.objects.bulk_create(
        RolloutStage(
            feature=feature,
            position=position,
            percentage_bp=s.percentage_bp,
            soak_minutes=s.soak_minutes,
        )
        for position, s in enumerate(spec.stages)
    )


def feature_lock(*, key: str) -> Feature:
    """The feature, locked until commit (call inside a transaction)."""
    feature = Feature.objects.select_for_update(no_key=True).filter(key=key).first()
    if feature is None:
        raise FeatureNotFound(f"No feature {key!r}.")
    return feature


@transaction.atomic
def feature_create(
    *, spec: FeatureSpec, actor: AbstractBaseUser | None, comment: str = ""
) -> Feature:
    spec = feature_spec_validate(spec)
    now = timezone.now()
    feature = Feature(key=spec.key, windows_checked_at=now, guard_since=now)
    _apply(feature, spec)
    try:
        with transaction.atomic():
            feature.save()
    except IntegrityError as error:
        raise FeatureExists(f"A feature {spec.key!r} exists already.") from error
    _write_children(feature, spec)
    change_record(
        feature=feature,
        key=feature.key,
        revision=feature.revision,
        action=ChangeAction.CREATED,
        actor=actor,
        comment=comment,
        before=None,
        after=feature_state(feature),
    )
    return feature


def _schedule_after_edit(feature: Feature, before: FeatureSpec, after: FeatureSpec) -> None:
    """An operator's edit takes the rollout out of the schedule's hands: new stages
    reset it; a hand-set percentage or the kill switch pauses it."""
    if feature.schedule_status not in (ScheduleStatus.RUNNING, ScheduleStatus.PAUSED):
        return
    if before.stages != after.stages:
        feature.schedule_status = ScheduleStatus.IDLE
        feature.stage_position = feature.stage_started_at = None
    elif feature.schedule_status == ScheduleStatus.RUNNING and (
        before.percentage_bp != after.percentage_bp or (after.killed and not before.killed)
    ):
        feature.schedule_status = ScheduleStatus.PAUSED


@transaction.atomic
def feature_update(
    *,
    key: str,
    spec: FeatureSpec,
    actor: AbstractBaseUser | None,
    comment: str = "",
    expected_revision: int | None = None,
) -> Feature:
    """Replace a feature's rules. With `expected_revision`, refuse (FeatureChanged)
    if someone saved it meanwhile. Saving the same rules again changes nothing."""
    feature = feature_lock(key=key)
    if expected_revision is not None and feature.revision != expected_revision:
        raise FeatureChanged(
            f"{key} is at revision {feature.revision} now, not {expected_revision}: someone "
            "saved it meanwhile. Reload it and apply your change again.",
            details={"revision": feature.revision},
        )
    if spec.key != key:
        raise InvalidRule("a feature's key cannot change.", field="key")
    spec = feature_spec_validate(spec)
    current = feature_spec_of(feature, with_stages=True)
    if spec_to_json(spec) == spec_to_json(current):
        return feature
    before = feature_state(feature)
    _schedule_after_edit(feature, current, spec)
    _apply(feature, spec)
    # This change is pushed as of now, and the guard judges only what follows it.
    feature.windows_checked_at = feature.guard_since = timezone.now()
    _write_children(feature, spec)
    if spec.killed != current.killed:
        action = ChangeAction.KILLED if spec.killed else ChangeAction.REVIVED
    else:
        action = ChangeAction.UPDATED
    feature_commit(feature, before=before, action=action, actor=actor, comment=comment)
    return feature


def feature_patch(
    *,
    key: str,
    changes: Mapping[str, object],
    actor: AbstractBaseUser | None,
    comment: str = "",
    expected_revision: int | None = None,
) -> Feature:
    """Change some rules and keep the rest as they are now, read under the row's lock
    (so a concurrent save is never written back over)."""
    with transaction.atomic():
        feature = feature_lock(key=key)
        spec = replace(feature_spec_of(feature, with_stages=True), **changes)  # type: ignore[arg-type]
        return feature_update(
            key=key, spec=spec, actor=actor, comment=comment, expected_revision=expected_revision
        )


def _edit(key: str, actor: AbstractBaseUser | None, comment: str, **changes: object) -> Feature:
    return feature_patch(key=key, changes=changes, actor=actor, comment=comment)


def feature_set_killed(
    *, key: str, killed: bool, actor: AbstractBaseUser | None, comment: str = ""
) -> Feature:
    """The kill switch: off for everyone at once (and the schedule paused)."""
    return _edit(key, actor, comment, killed=killed)


def feature_percentage_set(
    *, key: str, percentage_bp: int, actor: AbstractBaseUser | None, comment: str = ""
) -> Feature:
    """Widen or narrow the rollout by hand (a running schedule pauses)."""
    return _edit(key, actor, comment, percentage_bp=percentage_bp)


def feature_set_stages(
    *, key: str, stages: tuple[StageSpec, ...], actor: AbstractBaseUser | None, comment: str = ""
) -> Feature:
    """Replace the rollout schedule's stages (a running schedule resets)."""
    return _edit(key, actor, comment, stages=stages)


@transaction.atomic
def feature_delete(*, key: str, actor: AbstractBaseUser | None, comment: str = "") -> None:
    """Delete a feature; its audit trail stays, and devices that had it on learn it is off."""
    feature = feature_lock(key=key)
    before = feature_state(feature)
    feature.delete()
    change_record(
        feature=None,
        key=key,
        revision=before["revision"] + 1,
        action=ChangeAction.DELETED,
        actor=actor,
        comment=comment,
        before=before,
        after=None,
    )
