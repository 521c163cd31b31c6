"""Every change of a feature ends here: audited, published, pushed.

A change bumps the feature's revision, records who made it with the feature's
whole state before and after, drops this process's compiled features and, once
the transaction commits, moves the shared version stamp (every other process
reloads within SHARED_STATE_POLL_SECONDS) and enqueues the push of flag entries
when the feature is, or was, visible to clients.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django.contrib.auth.base_user import AbstractBaseUser

from accounts.models import User
from grayrelease.evaluation import features_snapshot
from grayrelease.models import ChangeAction, Feature, FeatureChange, PushStatus
from grayrelease.specs import feature_state
from wechat_core.transactions import after_commit, task_enqueue

# Who a change made by no operator (actor None) is shown as in the audit trail.
SYSTEM_ACTOR = "system"
SCHEDULE_ACTOR = "rollout schedule"
WINDOWS_ACTOR = "time windows"
GUARD_ACTOR = "rollout guard"


def actor_label(actor: AbstractBaseUser | None, *, system: str = SYSTEM_ACTOR) -> str:
    return str(actor)[:150] if actor is not None else system


def _visible(state: dict[str, Any] | None) -> bool:
    return state is not None and bool(state["spec"]["client_visible"])


def change_record(
    *,
    feature: Feature | None,
    key: str,
    revision: int,
    action: ChangeAction,
    actor: AbstractBaseUser | None,
    comment: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    system: str = SYSTEM_ACTOR,
) -> FeatureChange:
    """Audit a change already written (inside its transaction) and publish it.
    `system`: who the change is shown as when `actor` is None."""
    push = _visible(before) or _visible(after)
    change = FeatureChange.objects.create(
        feature=feature,
        feature_key=key,
        revision=revision,
        action=action,
        actor=cast(User, actor) if actor is not None and actor.pk else None,
        actor_label=actor_label(actor, system=system),
        comment=comment.strip()[:200],
        before=before,
        after=after,
        push_status=PushStatus.PENDING if push else PushStatus.NOT_NEEDED,
    )
    features_snapshot.invalidate_on_commit()
    if push:
        change_id = change.pk
        after_commit(lambda: push_enqueue(change_id=change_id), name="flag_push")
    return change


def feature_commit(
    feature: Feature,
    *,
    before: dict[str, Any],
    action: ChangeAction,
    actor: AbstractBaseUser | None,
    comment: str,
    update_fields: list[str] | None = None,
    evaluated_at: dt.datetime | None = None,
    system: str = SYSTEM_ACTOR,
) -> FeatureChange:
    """Save a locked, modified feature as its next revision and audit the change.
    `evaluated_at`: the moment its push evaluates the new state at (default: the
    change's own time)."""
    feature.revision += 1
    if update_fields is None:
        feature.save()
    else:
        feature.save(update_fields=[*update_fields, "revision", "updated_at"])
    return change_record(
        feature=feature,
        key=feature.key,
        revision=feature.revision,
        action=action,
        actor=actor,
        comment=comment,
        before=before,
        after=feature_state(feature)
        | ({"evaluated_at": evaluated_at.isoformat()} if evaluated_at else {}),
        system=system,
    )


def push_enqueue(*, change_id: int) -> None:
    task_enqueue("grayrelease.tasks.push_flag_change", change_id)
