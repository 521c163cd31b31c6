"""The embedded mode's beat: every CELERY_BEAT_SCHEDULE entry runs in-process when
it is due, with beat's own schedules; a failing task does not stop the others."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import time_machine
from celery import shared_task
from celery.schedules import crontab
from django.conf import settings

from grayrelease.selectors import feature_get
from grayrelease.services.schedule import feature_schedule_start
from grayrelease.types import StageSpec
from tests.factories import make_feature
from wechat_core.celery import app
from wechat_core.embedded.beat import EmbeddedBeat

ran: list[str] = []


@shared_task(name="tests.embedded_beat.record")
def record(label: str) -> None:
    ran.append(label)


@shared_task(name="tests.embedded_beat.fail")
def fail() -> None:
    raise RuntimeError("a broken periodic task")


START = dt.datetime(2026, 12, 1, 12, 0, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _clean() -> None:
    ran.clear()


def test_beat__runs_an_interval_entry_each_time_it_is_due_and_never_before() -> None:
    with time_machine.travel(START, tick=False) as clock:
        every_10s = {"task": "tests.embedded_beat.record", "schedule": 10.0, "args": ("ten",)}
        beat = EmbeddedBeat(app, {"every-10s": every_10s})
        assert 0 < beat.tick() <= 10
        assert ran == []  # like beat: the first run is one interval after start
        clock.shift(9.5)
        beat.tick()
        assert ran == []
        clock.shift(0.6)
        beat.tick()
        beat.tick()  # due once, run once
        assert ran == ["ten"]
        clock.shift(10)
        beat.tick()
        assert ran == ["ten", "ten"]


def test_beat__runs_a_crontab_entry_at_its_minute() -> None:
    with time_machine.travel(START, tick=False) as clock:
        at_5 = {"task": "tests.embedded_beat.record", "schedule": crontab(minute=5)}
        at_5["args"] = ("cron",)
        beat = EmbeddedBeat(app, {"at-:05": at_5})
        clock.shift(dt.timedelta(minutes=4))  # 12:04:30
        beat.tick()
        assert ran == []
        clock.shift(dt.timedelta(minutes=1))  # 12:05:30
        beat.tick()
        assert ran == ["cron"]
        clock.shift(dt.timedelta(minutes=30))
        beat.tick()
        assert ran == ["cron"]  # next at 13:05


def test_beat__a_failing_task_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        beat = EmbeddedBeat(
            app,
            {
                "broken": {"task": "tests.embedded_beat.fail", "schedule": 1.0},
                "fine": {"task": "tests.embedded_beat.record", "schedule": 1.0, "args": ("ok",)},
            },
        )
        for _ in range(3):
            clock.shift(1.1)
            with caplog.at_level(logging.ERROR, logger="wechat_core.embedded.beat"):
                beat.tick()
    assert ran == ["ok", "ok", "ok"]
    failures = [r for r in caplog.records if "scheduled task broken" in r.getMessage()]
    assert len(failures) == 3


def test_beat__covers_every_entry_of_the_real_schedule() -> None:
    beat = EmbeddedBeat(app, settings.CELERY_BEAT_SCHEDULE)
    app.loader.import_default_modules()
    assert {entry.task for entry in beat.entries} <= set(app.tasks)
    assert "grayrelease.tasks.advance_rollout_stages" in {entry.task for entry in beat.entries}


@pytest.mark.django_db(transaction=True)
def test_beat__with_the_real_schedule__advances_a_rollout_stage_once_it_has_soaked() -> None:
    # given: a feature at its first stage, and the production schedule
    make_feature("chat.embedded", stages=(StageSpec(100, 60), StageSpec(10_000, 0)))
    with time_machine.travel(START, tick=False) as clock:
        feature_schedule_start(key="chat.embedded", actor=None)
        app.loader.import_default_modules()
        beat = EmbeddedBeat(app, settings.CELERY_BEAT_SCHEDULE)
        # when: the beat ticks through the hour's soak
        clock.shift(dt.timedelta(minutes=59))
        beat.tick()
        assert feature_get(key="chat.embedded").percentage_bp == 100
        clock.shift(dt.timedelta(minutes=1, seconds=1))
        beat.tick()
    # then: the stage advanced with nobody running Celery beat
    assert feature_get(key="chat.embedded").percentage_bp == 10_000
