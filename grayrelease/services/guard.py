"""Rollout guards: pause or roll back a rollout whose treated users fail more than
its control group, and alert operators through monitoring.

Celery beat runs `rollout_guards_check` every GRAYRELEASE_GUARD_TICK_SECONDS.
For each guarded feature it reads both variants' outcomes from monitoring's
history (selectors.guard_samples: the feature's window, nothing from before an
operator last changed it), judges them (grayrelease.guard.guard_judge) and,
with the feature locked:

- records the verdict on the feature (the admin shows it; not a change);
- when tripped, acts as the feature's guard says, audited as a change by no
  operator ("rollout guard", with the numbers in the comment):
  pause: a running schedule pauses; an operator resumes it once it is fixed.
  rollback: the percentage goes to 0 % and the schedule back to idle. Not to
  the previous stage, whose users run the same failing code path: only 0 %
  stops the harm, and starting the schedule again after the fix re-checks it
  from the first, smallest stage. Not the kill switch either: testers on the
  allow list keep the feature, to reproduce the failure.
  A guard that trips again on the same evidence finds nothing left to do;
- reports the verdict on the feature's alert rule in monitoring (source
  "grayrelease"), so operators hear of the trip once through every channel
  (e-mail, webhook, their chat), and of its resolution when the evidence is
  gone.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from grayrelease.evaluation import FEATURE_OUTCOMES
from grayrelease.guard import GuardVerdict, guard_judge
from grayrelease.models import ChangeAction, Feature, ScheduleStatus
from grayrelease.rules import percent
from grayrelease.selectors import guard_samples
from grayrelease.services.changes import GUARD_ACTOR, feature_commit
from grayrelease.specs import feature_state, guard_spec_of
from grayrelease.types import GuardAction, GuardSpec, GuardState
from monitoring.models import Aggregation, Severity
from monitoring.services.alerts import (
    ExternalRule,
    Verdict,
    alert_rules_retire,
    alert_verdict_record,
)

GUARD_SOURCE = "grayrelease"
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GuardCheck:
    key: str
    state: GuardState
    action: ChangeAction | None  # what the guard did to the rollout, if anything


def guard_rule_name(key: str) -> str:
    return f"Rollout guard: {key}"


def guard_rule(*, key: str, guard: GuardSpec) -> ExternalRule:
    """The feature's alert rule as monitoring shows it."""
    what = "pauses its schedule" if guard.action == GuardAction.PAUSE else "rolls it back to 0 %"
    return ExternalRule(
        source=GUARD_SOURCE,
        name=guard_rule_name(key),
        description=(
            f"Judged by gray release: fires when the error rate of {key}'s treated users "
            f"exceeds its control group's by more than {guard.margin_bp / 100:.2f} points, "
            f"with {guard.min_sample} outcomes each in {guard.window_seconds} s; the guard "
            f"then {what}. See the feature in the admin."
        ),
        metric=FEATURE_OUTCOMES.name,
        aggregation=Aggregation.RATIO,
        labels={"feature": key, "variant": "on"},
        numerator_labels={"outcome": "error"},
        threshold=guard.margin_bp / 10_000,
        window_seconds=guard.window_seconds,
        min_volume=guard.min_sample,
        severity=Severity.CRITICAL,
    )


def _act(
    feature: Feature, guard: GuardSpec, verdict: GuardVerdict
) -> tuple[ChangeAction | None, str]:
    """Pause or roll back a tripped rollout (the feature is locked): the action
    taken (None: nothing left to do) and what to tell operators."""
    before = feature_state(feature)
    if guard.action == GuardAction.PAUSE:
        if feature.schedule_status != ScheduleStatus.RUNNING:
            return None, "the schedule is not running: nothing to pause"
        feature.schedule_status = ScheduleStatus.PAUSED
        action, fields, done = ChangeAction.GUARD_PAUSED, ["schedule_status"], "schedule paused"
    else:
        if feature.percentage_bp == 0:
            return None, "already at 0 %"
        done = f"rolled back from {percent(feature.percentage_bp)} to 0 %"
        feature.percentage_bp = 0
        feature.schedule_status = ScheduleStatus.IDLE
        feature.stage_position = feature.stage_started_at = None
        action = ChangeAction.GUARD_ROLLED_BACK
        fields = ["percentage_bp", "schedule_status", "stage_position", "stage_started_at"]
    feature_commit(
        feature,
        before=before,
        action=action,
        actor=None,
        comment=f"{verdict.explanation}; {done}",
        update_fields=fields,
        system=GUARD_ACTOR,
    )
    return action, done


def _alert_verdict(verdict: GuardVerdict, explanation: str) -> Verdict:
    holds = {GuardState.TRIPPED: True, GuardState.HEALTHY: False}.get(verdict.state)
    return Verdict(holds, verdict.treated.error_rate, explanation)


def _check_one(feature_id: int, now: dt.datetime) -> GuardCheck | None:
    read = Feature.objects.filter(pk=feature_id, guarded=True).first()
    guard = guard_spec_of(read) if read is not None else None
    if read is None or guard is None:
        return None
    samples = guard_samples(
        key=read.key, window_seconds=guard.window_seconds, not_before=read.guard_since, now=now
    )
    verdict = guard_judge(guard=guard, treated=samples.treated, control=samples.control)
    with transaction.atomic():
        feature = Feature.objects.select_for_update(no_key=True).filter(pk=feature_id).first()
        if (
            feature is None
            or guard_spec_of(feature) != guard
            or feature.guard_since != read.guard_since
        ):
            return None  # changed while we read: the next tick judges the new state
        action: ChangeAction | None = None
        done = ""
        if verdict.state == GuardState.TRIPPED:
            action, done = _act(feature, guard, verdict)
        explanation = f"{verdict.explanation}; {done}" if done else verdict.explanation
        feature.guard_state, feature.guard_checked_at = verdict.state, now
        feature.guard_explanation = explanation[:300]
        feature.save(update_fields=["guard_state", "guard_checked_at", "guard_explanation"])
        alert_verdict_record(
            rule=guard_rule(key=feature.key, guard=guard),
            verdict=_alert_verdict(verdict, explanation),
            now=now,
        )
    return GuardCheck(feature.key, verdict.state, action)


def rollout_guards_check(*, now: dt.datetime | None = None) -> list[GuardCheck]:
    """Judge every guarded feature once (each in its own transaction) and resolve
    the alerts of guards that are gone; returns the verdicts reached."""
    moment = now or timezone.now()
    guarded = list(Feature.objects.filter(guarded=True).order_by("pk").values_list("pk", "key"))
    checks = []
    for pk, key in guarded:
        try:  # one feature's trouble must not leave the others unguarded
            checks.append(_check_one(pk, moment))
        except Exception:
            logger.exception("checking the rollout guard of %s failed", key)
    alert_rules_retire(
        source=GUARD_SOURCE, keep=[guard_rule_name(key) for _, key in guarded], now=moment
    )
    return [check for check in checks if check is not None]
