"""Time windows opening and closing on their own reach clients: beat's tick
records the change (audited, new revision) and it is pushed like any other."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone

from grayrelease.models import ChangeAction, FeatureChange
from grayrelease.services.push import flag_push_run
from grayrelease.services.windows import time_windows_announce
from grayrelease.tasks import announce_time_windows
from grayrelease.types import TimeWindowSpec
from tests.factories import login_session, make_feature, make_user
from wechat_core.sync.models import EntryKind, SyncEntry

pytestmark = pytest.mark.django_db


def pushed(user_id: int) -> list[object]:
    return list(
        SyncEntry.objects.filter(user_id=user_id, kind=EntryKind.FLAG)
        .order_by("seq")
        .values_list("payload", flat=True)
    )


def test_time_window__opening_then_closing__is_audited_and_pushed_to_devices() -> None:
    # given: a signed-in user and a festival feature for the hour starting in an hour
    session = login_session(make_user())
    now = timezone.now()
    window = TimeWindowSpec(now + dt.timedelta(hours=1), now + dt.timedelta(hours=2))
    make_feature("web.festival", client_visible=True, percentage_bp=10_000, time_windows=(window,))
    assert time_windows_announce(now=now + dt.timedelta(minutes=30)) == []
    # when: the tick after it opened
    assert time_windows_announce(now=now + dt.timedelta(minutes=61)) == ["web.festival"]
    opened = FeatureChange.objects.filter(feature_key="web.festival").order_by("-id").first()
    assert opened is not None
    assert (opened.action, opened.revision, opened.actor_label) == (
        ChangeAction.WINDOW_OPENED,
        2,
        "time windows",
    )
    flag_push_run(change_id=opened.pk)
    # then: the device is told it is on; the same tick again tells nothing more
    assert time_windows_announce(now=now + dt.timedelta(minutes=62)) == []
    assert pushed(session.user.pk) == [
        {"feature": "web.festival", "revision": 2, "devices": {str(session.device_id): True}}
    ]
    # and when it closes
    assert time_windows_announce(now=now + dt.timedelta(hours=3)) == ["web.festival"]
    closed = FeatureChange.objects.filter(feature_key="web.festival").order_by("-id").first()
    assert closed is not None
    assert closed.action == ChangeAction.WINDOW_CLOSED
    flag_push_run(change_id=closed.pk)
    assert pushed(session.user.pk)[-1]["devices"] == {str(session.device_id): False}  # type: ignore[index]


def test_time_window__of_a_server_side_feature__needs_no_announcement() -> None:
    now = timezone.now()
    make_feature(
        "server.festival",
        percentage_bp=10_000,
        time_windows=(TimeWindowSpec(now + dt.timedelta(minutes=5), None),),
    )
    assert time_windows_announce(now=now + dt.timedelta(hours=1)) == []
    assert FeatureChange.objects.filter(feature_key="server.festival").count() == 1


def test_time_window__beat__runs_the_announcement_every_tick() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["grayrelease-announce-time-windows"]
    assert entry["task"] == announce_time_windows.name
    assert entry["schedule"] == float(settings.GRAYRELEASE_SCHEDULE_TICK_SECONDS)
