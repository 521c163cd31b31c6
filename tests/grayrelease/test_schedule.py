"""Rollout schedules: stages with minimum soak times, advanced by Celery beat, and
operators who stay in charge (pause, resume, hand-set percentages, kill switch)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from devtools.processes import ServerProcess
from grayrelease.exceptions import ScheduleRefused
from grayrelease.models import ChangeAction, ScheduleStatus
from grayrelease.selectors import feature_changes, feature_get
from grayrelease.services.features import (
    feature_percentage_set,
    feature_set_killed,
    feature_set_stages,
)
from grayrelease.services.schedule import (
    feature_schedule_pause,
    feature_schedule_resume,
    feature_schedule_start,
    rollout_stages_advance,
)
from grayrelease.tasks import advance_rollout_stages
from grayrelease.types import StageSpec
from tests.factories import make_feature

STANDARD = (
    StageSpec(100, 60),
    StageSpec(500, 60),
    StageSpec(2000, 120),
    StageSpec(5000, 240),
    StageSpec(10_000, 0),
)


def minutes(start: dt.datetime, n: float) -> dt.datetime:
    return start + dt.timedelta(minutes=n)


@pytest.mark.django_db
def test_schedule__runs_1_5_20_50_100_percent__each_stage_after_its_soak() -> None:
    # given: the standard schedule, started
    make_feature("chat.staged", stages=STANDARD)
    started = feature_schedule_start(key="chat.staged", actor=None).stage_started_at
    assert started is not None
    assert feature_get(key="chat.staged").percentage_bp == 100
    # when / then: nothing moves before the soak time is up
    assert rollout_stages_advance(now=minutes(started, 59)) == []
    assert feature_get(key="chat.staged").percentage_bp == 100
    # one stage per tick once it is
    seen, now = [], minutes(started, 60)
    for soak in (60, 120, 240):
        assert rollout_stages_advance(now=now) == ["chat.staged"]
        assert rollout_stages_advance(now=now) == []  # the new stage soaks first
        seen.append(feature_get(key="chat.staged").percentage_bp)
        now = minutes(now, soak)
    assert rollout_stages_advance(now=now) == ["chat.staged"]
    feature = feature_get(key="chat.staged")
    assert [*seen, feature.percentage_bp] == [500, 2000, 5000, 10_000]
    assert feature.schedule_status == ScheduleStatus.COMPLETED
    assert rollout_stages_advance(now=minutes(now, 10_000)) == []
    # and every step is audited, by the schedule
    advanced = [
        c for c in feature_changes(key="chat.staged") if c.action == ChangeAction.STAGE_ADVANCED
    ]
    assert len(advanced) == 4
    assert {c.actor_label for c in advanced} == {"rollout schedule"}
    assert advanced[-1].comment == "soaked 60 min at 1.00 %"


@pytest.mark.django_db
def test_schedule__paused__holds_and_resumed__goes_on() -> None:
    make_feature("chat.hold", stages=STANDARD)
    started = feature_schedule_start(key="chat.hold", actor=None).stage_started_at
    assert started is not None
    feature_schedule_pause(key="chat.hold", actor=None)
    assert rollout_stages_advance(now=minutes(started, 600)) == []
    feature_schedule_resume(key="chat.hold", actor=None)
    assert rollout_stages_advance(now=minutes(started, 600)) == ["chat.hold"]
    assert feature_get(key="chat.hold").percentage_bp == 500


@pytest.mark.django_db
def test_schedule__hand_set_percentage_or_kill_switch__pause_it() -> None:
    make_feature("chat.manual", stages=STANDARD)
    feature_schedule_start(key="chat.manual", actor=None)
    feature_percentage_set(key="chat.manual", percentage_bp=300, actor=None)
    assert feature_get(key="chat.manual").schedule_status == ScheduleStatus.PAUSED
    feature_schedule_resume(key="chat.manual", actor=None)
    feature_set_killed(key="chat.manual", killed=True, actor=None)
    assert feature_get(key="chat.manual").schedule_status == ScheduleStatus.PAUSED
    with pytest.raises(ScheduleRefused, match="kill switch"):
        feature_schedule_resume(key="chat.manual", actor=None)


@pytest.mark.django_db
def test_schedule__new_stages__reset_it() -> None:
    make_feature("chat.restage", stages=STANDARD)
    feature_schedule_start(key="chat.restage", actor=None)
    feature_set_stages(key="chat.restage", stages=(StageSpec(1000, 30),), actor=None)
    feature = feature_get(key="chat.restage")
    assert (feature.schedule_status, feature.stage_position) == (ScheduleStatus.IDLE, None)


@pytest.mark.django_db
def test_schedule__start__begins_at_the_first_stage_that_does_not_narrow() -> None:
    make_feature("chat.mid", percentage_bp=800, stages=STANDARD)
    feature = feature_schedule_start(key="chat.mid", actor=None)
    assert (feature.percentage_bp, feature.stage_position) == (2000, 2)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "no stages"),
        ({"stages": STANDARD, "killed": True}, "kill switch"),
        ({"stages": STANDARD, "percentage_bp": 10_000}, "last stage"),
    ],
)
def test_schedule__start_that_cannot_work__is_refused(spec: dict[str, Any], message: str) -> None:
    make_feature("chat.nostart", **spec)
    with pytest.raises(ScheduleRefused, match=message):
        feature_schedule_start(key="chat.nostart", actor=None)


def test_schedule__celery_beat__runs_the_advance_task() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["grayrelease-advance-stages"]
    assert entry["task"] == advance_rollout_stages.name
    assert entry["schedule"] == float(settings.GRAYRELEASE_SCHEDULE_TICK_SECONDS)


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_advance_task__in_a_real_worker__widens_a_soaked_stage(
    celery_worker: ServerProcess,
) -> None:
    # given: a running schedule whose first stage needs no soak
    make_feature("chat.worker", stages=(StageSpec(100, 0), StageSpec(2500, 60)))
    feature_schedule_start(key="chat.worker", actor=None)
    # when: beat's task runs in the worker
    advanced = advance_rollout_stages.delay().get(timeout=30)
    # then
    assert advanced == ["chat.worker"]
    feature = feature_get(key="chat.worker")
    assert (feature.percentage_bp, feature.schedule_status) == (2500, ScheduleStatus.COMPLETED)
    assert feature.stage_started_at is not None
    assert feature.stage_started_at <= timezone.now()
