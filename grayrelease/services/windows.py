"""Time windows opening and closing on their own, told to clients.

Server-side checks look at the clock on every evaluation, so they need
nothing. Clients hold flags, though: when a client-visible feature's window
opens or closes, beat's tick (grayrelease.tasks.announce_time_windows) records
the change, audited like any other with a new revision, and it is pushed to
the devices whose decision differs between the last tick and this one.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from grayrelease.compiled import in_time_windows
from grayrelease.evaluation import compile_state
from grayrelease.models import ChangeAction, Feature
from grayrelease.services.changes import WINDOWS_ACTOR, feature_commit
from grayrelease.specs import feature_state


def _boundaries(feature: Feature) -> set[dt.datetime]:
    return {
        moment
        for window in feature.time_windows.all()
        for moment in (window.starts_at, window.ends_at)
        if moment is not None
    }


def _announce_one(feature_id: int, now: dt.datetime) -> str | None:
    with transaction.atomic():
        feature = Feature.objects.select_for_update(no_key=True).filter(pk=feature_id).first()
        if feature is None:
            return None
        since = feature.windows_checked_at or feature.created_at
        crossed = [b for b in _boundaries(feature) if since < b <= now]
        feature.windows_checked_at = now
        if not crossed or not feature.client_visible:
            feature.save(update_fields=["windows_checked_at"])
            return None
        # Evaluated as it stood at the last tick, and as it stands now.
        before = {**feature_state(feature), "evaluated_at": since.isoformat()}
        compiled = compile_state(before)
        assert compiled is not None  # noqa: S101 - a state always compiles
        is_open = in_time_windows(compiled, now.timestamp())
        action = ChangeAction.WINDOW_OPENED if is_open else ChangeAction.WINDOW_CLOSED
        feature_commit(
            feature,
            before=before,
            action=action,
            actor=None,
            comment=f"time window boundary {max(crossed).isoformat()}",
            update_fields=["windows_checked_at"],
            evaluated_at=now,
            system=WINDOWS_ACTOR,
        )
        return feature.key


def time_windows_announce(*, now: dt.datetime | None = None) -> list[str]:
    """Record the windows of client-visible features that opened or closed since
    the last tick; returns the keys announced."""
    moment = now or timezone.now()
    with_windows = (
        Feature.objects.filter(client_visible=True, time_windows__isnull=False)
        .distinct()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    announced = [_announce_one(pk, moment) for pk in with_windows]
    return [key for key in announced if key is not None]
