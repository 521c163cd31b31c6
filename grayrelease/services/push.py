"""Pushing flag changes to the devices they affect, through SYNC (seed 003 §6.1.4).

A client-visible feature's change is pushed by a Celery task, never inline in
the operator's request: the task scans every device holding a live ticket, a
batch of users at a time (GRAYRELEASE_PUSH_BATCH), evaluates the feature as it
was before the change and as it is after, and writes a `flag` entry into the
sync log of each user with a device whose decision changed, through
messaging's sync-log service (one transaction per batch). A user whose
decision did not change gets nothing: raising a rollout from 5 % to 6 % writes
entries for about 1 % of the signed-in users.

The decisions come from the change's audit record, so a push that runs late, or
is resumed after a crash (`push_cursor` moves in the batch's transaction),
writes what that change did, exactly once per user. Devices keep the value of
the highest revision they have seen, so pushes of two quick changes may land in
either order.

Devices signed in later get their flags at login and in the websocket hello.
"""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.selectors import device_profiles_signed_in
from grayrelease.compiled import CompiledFeature, decide
from grayrelease.evaluation import compile_state
from grayrelease.models import FeatureChange, PushStatus
from grayrelease.selectors import subject_of
from grayrelease.services.changes import push_enqueue
from grayrelease.types import Subject
from wechat_core.sync.log import entries_append_payloads
from wechat_core.sync.models import EntryKind


def _shows(feature: CompiledFeature | None, subject: Subject, now: float) -> bool:
    """What the device shows: on only if the feature exists, is sent to clients and
    is on for it."""
    return feature is not None and feature.client_visible and decide(feature, subject, now).enabled


def _moment(change: FeatureChange, state: dict[str, Any] | None) -> float:
    evaluated_at = (state or {}).get("evaluated_at")
    moment = dt.datetime.fromisoformat(evaluated_at) if evaluated_at else change.created_at
    return moment.timestamp()


def _payloads(change: FeatureChange, subjects: list[Subject]) -> dict[int, dict[str, Any]]:
    before, after = compile_state(change.before), compile_state(change.after)
    # Both as of the change, except a window opening on its own (services.windows),
    # which compares the last tick with this one.
    then, now = _moment(change, change.before), _moment(change, change.after)
    payloads: dict[int, dict[str, Any]] = {}
    for subject in subjects:
        shown = _shows(after, subject, now)
        if shown == _shows(before, subject, then):
            continue
        payload = payloads.setdefault(
            subject.user_id,
            {"feature": change.feature_key, "revision": change.revision, "devices": {}},
        )
        payload["devices"][str(subject.device_id)] = shown
    return payloads


def _push_batch(change_id: int) -> bool:
    """Push to the next batch of users; False once the change is pushed to all."""
    with transaction.atomic():
        change = FeatureChange.objects.select_for_update(no_key=True).filter(pk=change_id).first()
        if change is None or change.push_status != PushStatus.PENDING:
            return False
        profiles = device_profiles_signed_in(
            after_user_id=change.push_cursor, users=settings.GRAYRELEASE_PUSH_BATCH
        )
        if not profiles:
            change.push_status = PushStatus.DONE
            change.save(update_fields=["push_status"])
            return False
        payloads = _payloads(change, [subject_of(profile) for profile in profiles])
        if payloads:
            entries_append_payloads(kind=EntryKind.FLAG, payloads=payloads)
        change.push_cursor = profiles[-1].user_id
        change.pushed_users += len(payloads)
        change.save(update_fields=["push_cursor", "pushed_users"])
        return True


def flag_push_run(*, change_id: int) -> int:
    """Push a change to every signed-in user it affects; returns how many users
    have got an entry for it (also from earlier, interrupted runs)."""
    while _push_batch(change_id):
        pass
    pushed = FeatureChange.objects.filter(pk=change_id).values_list("pushed_users", flat=True)
    return int(pushed.first() or 0)


def flag_pushes_resume(*, older_than_seconds: int) -> list[int]:
    """Enqueue again the pushes still pending this long after their change (a lost
    task, a crashed worker). Two runs of one push share the work safely."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stalled = list(
        FeatureChange.objects.filter(push_status=PushStatus.PENDING, created_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:100]
    )
    for change_id in stalled:
        push_enqueue(change_id=change_id)
    return stalled
