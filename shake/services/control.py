"""Live control of rounds (seed 004): start the next round now, correct the
countdown, change the stagger of its groups (seed 003 错峰) before it starts, pause,
resume, end. Every change is audited (`RoundControlEvent`, whose
id becomes the round's control version) and reaches every access process within
a second by three independent routes (docs/shake.md "Live control"):

1. a Redis message on `{SHAKE_REGISTRY}:control`, published after commit;
2. the database: each process re-reads its rounds every SHAKE_CONTROL_POLL_SECONDS;
3. the clients: every shake answer carries the round's signed schedule, which the
   client sends with its next shake, to whichever process; a process that sees a
   newer version applies it on the spot.

With no command at all a round still starts at its (corrected) countdown: the
countdown fallback is part of every schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from shake.exceptions import ControlRefused, RoundUnknown
from shake.models import ControlAction, Round, RoundControlEvent
from shake.schedule import schedule_encode, schedule_of
from shake.services.activities import stagger_check
from wechat_core.cacheclient import redis_connect
from wechat_core.transactions import after_commit

logger = logging.getLogger(__name__)


def control_channel() -> str:
    return f"{settings.SHAKE_REGISTRY}:control"


@cache
def _publisher(url: str) -> redis.Redis:
    return redis_connect(url, timeout=1)


def _publish(token: str) -> None:
    if settings.REDIS_URL:
        _publisher(settings.REDIS_URL).publish(control_channel(), token)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _epoch_iso(value: float) -> str:
    return datetime.fromtimestamp(value, tz=UTC).isoformat()


def _summary(round_: Round, now: datetime) -> dict[str, Any]:
    schedule = schedule_of(round_, now)
    return {
        "starts": _epoch_iso(schedule.starts),
        "ends": _epoch_iso(schedule.ends),
        "paused": schedule.paused,
        "ended": schedule.ended,
        "countdown": _iso(round_.countdown_at or round_.latest_start),
        "stagger": round_.stagger_seconds,
    }


def _actor_fields(actor: AbstractBaseUser | None) -> tuple[AbstractBaseUser | None, str]:
    if actor is None or actor.pk is None:
        return None, "system"
    return actor, str(actor)[:150]


def _change(
    *,
    round_id: int,
    action: str,
    actor: AbstractBaseUser | None,
    reason: str,
    apply: Callable[[Round, datetime], None],
) -> Round:
    now = timezone.now()
    with transaction.atomic():
        round_ = (
            Round.objects.select_for_update()
            .filter(pk=round_id, activity__approved_at__isnull=False)
            .first()
        )
        if round_ is None:
            raise RoundUnknown("No such round (or its activity is not approved).")
        before = _summary(round_, now)
        apply(round_, now)
        who, label = _actor_fields(actor)
        event = RoundControlEvent.objects.create(
            round=round_,
            action=action,
            at=now,
            actor=who,  # type: ignore[misc]
            actor_label=label,
            reason=reason[:200],
            before=before,
            after=_summary(round_, now),
        )
        round_.control_version = event.pk
        round_.save()
        token = schedule_encode(schedule_of(round_))
        # Route 1; routes 2 (the poll) and 3 (the clients) need nothing from here.
        after_commit(lambda: _publish(token), name="shake_control_publish")
    return round_


def _started(round_: Round, now: datetime) -> bool:
    return schedule_of(round_, now).starts <= now.timestamp()


def _over(round_: Round, now: datetime) -> bool:
    schedule = schedule_of(round_, now)
    return schedule.ended or (not schedule.paused and schedule.ends <= now.timestamp())


def round_start(*, round_id: int, actor: AbstractBaseUser | None, reason: str = "") -> Round:
    """Start a round now (before its countdown ends)."""

    def apply(round_: Round, now: datetime) -> None:
        if _started(round_, now) or round_.ended_at is not None:
            raise ControlRefused("This round has started already.")
        round_.started_at = now

    return _change(
        round_id=round_id, action=ControlAction.START, actor=actor, reason=reason, apply=apply
    )


def round_start_next(
    *, activity_id: int, actor: AbstractBaseUser | None, reason: str = ""
) -> Round:
    """Start the activity's next round: the first, by its countdown, not started yet."""
    now = timezone.now()
    waiting = [
        round_
        for round_ in Round.objects.filter(
            activity_id=activity_id, activity__approved_at__isnull=False, ended_at__isnull=True
        )
        if not _started(round_, now)
    ]
    if not waiting:
        raise ControlRefused("No round of this activity is waiting to start.")
    waiting.sort(key=lambda r: (schedule_of(r).starts, r.pk))
    return round_start(round_id=waiting[0].pk, actor=actor, reason=reason)


def round_countdown_set(
    *, round_id: int, at: datetime, actor: AbstractBaseUser | None, reason: str = ""
) -> Round:
    """Correct the countdown of a round that has not started: it starts by itself at
    `at` (earlier or later than planned) unless a start command comes first."""

    def apply(round_: Round, now: datetime) -> None:
        if _started(round_, now) or round_.ended_at is not None:
            raise ControlRefused("This round has started already: its countdown is over.")
        if at <= now:
            raise ControlRefused("A corrected countdown ends in the future (or start the round).")
        round_.countdown_at = at

    return _change(
        round_id=round_id, action=ControlAction.COUNTDOWN, actor=actor, reason=reason, apply=apply
    )


def round_stagger_set(
    *, round_id: int, stagger_seconds: int, actor: AbstractBaseUser | None, reason: str = ""
) -> Round:
    """Change how far apart the round's groups start (0: all at the start; else 60 to 300
    seconds), until the round starts: once its first group shakes, the groups' opening
    times are promised (clients count down to them), so the change is refused.
    Errors: shake_control_refused (started, ended, or no change), shake_plan_invalid
    (a stagger out of range, or one whose last group would start after the round)."""

    def apply(round_: Round, now: datetime) -> None:
        if _started(round_, now) or round_.ended_at is not None:
            raise ControlRefused(
                "This round has started: its groups' start times are given out, so its "
                "stagger can no longer change."
            )
        stagger_check(stagger_seconds=stagger_seconds, duration_seconds=round_.duration_seconds)
        if stagger_seconds == round_.stagger_seconds:
            raise ControlRefused(f"This round's stagger is {stagger_seconds} s already.")
        round_.stagger_seconds = stagger_seconds

    return _change(
        round_id=round_id, action=ControlAction.STAGGER, actor=actor, reason=reason, apply=apply
    )


def round_pause(*, round_id: int, actor: AbstractBaseUser | None, reason: str = "") -> Round:
    """Stop issuing for now; the time paused is added to the round's end."""

    def apply(round_: Round, now: datetime) -> None:
        if not _started(round_, now) or _over(round_, now) or round_.paused_at is not None:
            raise ControlRefused("Only a running round can be paused.")
        round_.paused_at = now

    return _change(
        round_id=round_id, action=ControlAction.PAUSE, actor=actor, reason=reason, apply=apply
    )


def round_resume(*, round_id: int, actor: AbstractBaseUser | None, reason: str = "") -> Round:
    def apply(round_: Round, now: datetime) -> None:
        if round_.paused_at is None or round_.ended_at is not None:
            raise ControlRefused("This round is not paused.")
        round_.paused_seconds += max((now - round_.paused_at).total_seconds(), 0.0)
        round_.paused_at = None

    return _change(
        round_id=round_id, action=ControlAction.RESUME, actor=actor, reason=reason, apply=apply
    )


def round_end(*, round_id: int, actor: AbstractBaseUser | None, reason: str = "") -> Round:
    """End a round now (started or not): nothing more is issued in it."""

    def apply(round_: Round, now: datetime) -> None:
        if _over(round_, now):
            raise ControlRefused("This round is over already.")
        if round_.paused_at is not None:
            round_.paused_seconds += max((now - round_.paused_at).total_seconds(), 0.0)
            round_.paused_at = None
        if not _started(round_, now):
            round_.started_at = now  # ended before it began: an empty window
        round_.ended_at = now

    return _change(
        round_id=round_id, action=ControlAction.END, actor=actor, reason=reason, apply=apply
    )
