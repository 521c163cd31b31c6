"""Live control of rounds (docs/shake.md "Live control"), in this process: the
commands and their audit, the schedule each engine holds and how it learns a change
(the database poll, and a client carrying the signed schedule), the countdown
fallback, and the operators' page. The Redis route and several real processes:
test_control_live.py."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.services.operators import operator_grant
from shake.access import Engine
from shake.exceptions import ControlRefused, PlanInvalid
from shake.models import ControlAction, Round, RoundControlEvent
from shake.schedule import schedule_encode, schedule_of
from shake.services import control
from tests.factories import login_session, make_user
from tests.shake.conftest import approved_round

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_registry() -> Iterator[None]:
    with override_settings(SHAKE_REGISTRY=f"shake-test-{uuid.uuid4().hex[:8]}"):
        yield


def waiting_round(*, countdown_in: float = 600.0) -> Round:
    """A round planned a second ago whose countdown ends `countdown_in` seconds from now:
    it waits for a start command (or its countdown)."""
    round_ = approved_round(starts_in=-1.0)
    round_.latest_start = timezone.now() + timedelta(seconds=countdown_in)
    round_.save(update_fields=["latest_start"])
    return round_


@pytest.fixture
def user_id() -> int:
    return make_user().pk


def engine_with(routes: list[str]) -> Engine:
    with override_settings(SHAKE_CONTROL_ROUTES=routes):
        engine = Engine()
    engine.step(force=True)
    return engine


def test_a_round_waits_for_its_countdown_when_no_command_came(user_id: int) -> None:
    round_ = waiting_round(countdown_in=600)
    engine = engine_with(["poll"])

    answer = engine.shake(user_id=user_id, record_token=None)

    assert answer.round_id is None
    assert answer.win is None
    assert answer.schedule is not None
    assert answer.schedule.round_id == round_.pk
    assert answer.schedule.starts == pytest.approx(round_.latest_start.timestamp())


def test_the_countdown_fallback_starts_a_round_at_its_latest_start(user_id: int) -> None:
    round_ = waiting_round(countdown_in=1.0)
    engine = engine_with(["poll"])
    assert engine.shake(user_id=user_id, record_token=None).round_id is None

    deadline = time.monotonic() + 30
    while (answer := engine.shake(user_id=user_id, record_token=None)).round_id is None:
        assert time.monotonic() < deadline, "the round never started by itself"
        time.sleep(0.02)

    assert time.time() >= round_.latest_start.timestamp()
    assert answer.round_id == round_.pk
    assert not RoundControlEvent.objects.exists()  # no command was needed


def test_start_command__audited_and_taken_by_a_polling_engine(user_id: int) -> None:
    round_ = waiting_round()
    operator = make_user(nickname="Ops")
    engine = engine_with(["poll"])

    control.round_start(round_id=round_.pk, actor=operator, reason="the host said it")
    engine.step(force=True)

    answer = engine.shake(user_id=user_id, record_token=None)
    assert answer.round_id == round_.pk
    assert answer.win is not None
    event = RoundControlEvent.objects.get()
    assert (event.action, event.actor, event.reason) == ("start", operator, "the host said it")
    assert event.before["starts"] != event.after["starts"]
    round_.refresh_from_db()
    assert round_.control_version == event.pk
    assert answer.schedule is not None
    assert answer.schedule.version == event.pk


def test_commands_that_do_not_fit_the_round_are_refused() -> None:
    round_ = waiting_round()
    with pytest.raises(ControlRefused):
        control.round_pause(round_id=round_.pk, actor=None)
    with pytest.raises(ControlRefused):
        control.round_countdown_set(
            round_id=round_.pk, at=timezone.now() - timedelta(seconds=1), actor=None
        )
    control.round_start(round_id=round_.pk, actor=None)
    with pytest.raises(ControlRefused):
        control.round_start(round_id=round_.pk, actor=None)
    with pytest.raises(ControlRefused):
        control.round_countdown_set(
            round_id=round_.pk, at=timezone.now() + timedelta(seconds=60), actor=None
        )
    with pytest.raises(ControlRefused):
        control.round_resume(round_id=round_.pk, actor=None)
    assert list(RoundControlEvent.objects.values_list("action", flat=True)) == ["start"]


def test_countdown_corrected__the_round_starts_by_itself_at_the_new_time() -> None:
    round_ = waiting_round(countdown_in=600)
    at = timezone.now() + timedelta(seconds=120)

    control.round_countdown_set(round_id=round_.pk, at=at, actor=None, reason="show runs late")

    round_.refresh_from_db()
    assert schedule_of(round_).starts == pytest.approx(at.timestamp())
    event = RoundControlEvent.objects.get()
    assert event.action == ControlAction.COUNTDOWN
    assert event.actor_label == "system"


def test_pause_stops_issuing_and_resume_moves_the_end_by_the_pause(user_id: int) -> None:
    round_ = approved_round(starts_in=-1.0, duration=600)
    engine = engine_with(["poll"])
    ends_before = schedule_of(round_).ends

    control.round_pause(round_id=round_.pk, actor=None)
    engine.step(force=True)
    paused = [engine.shake(user_id=n, record_token=None) for n in range(1, 20)]
    assert all(a.round_id == round_.pk and a.win is None for a in paused)
    assert all(a.schedule is not None and a.schedule.paused for a in paused)

    control.round_resume(round_id=round_.pk, actor=None)
    round_.refresh_from_db()
    assert round_.paused_seconds > 0
    assert schedule_of(round_).ends == pytest.approx(ends_before + round_.paused_seconds)
    engine.step(force=True)
    assert engine.shake(user_id=user_id, record_token=None).win is not None


def test_end__nothing_more_is_issued(user_id: int) -> None:
    round_ = approved_round(starts_in=-1.0)
    engine = engine_with(["poll"])
    assert engine.shake(user_id=user_id, record_token=None).win is not None

    control.round_end(round_id=round_.pk, actor=None, reason="programme over")
    engine.step(force=True)

    answer = engine.shake(user_id=user_id, record_token=None)
    assert answer.round_id is None
    assert answer.win is None
    with pytest.raises(ControlRefused):
        control.round_end(round_id=round_.pk, actor=None)


def test_a_client_carries_a_change_to_an_engine_that_heard_nothing(user_id: int) -> None:
    round_ = waiting_round()
    informed = engine_with(["poll"])
    deaf = engine_with(["client"])  # no poll, no Redis message
    control.round_start(round_id=round_.pk, actor=None)
    informed.step(force=True)
    deaf.step()  # its heartbeat, and no news
    assert deaf.shake(user_id=user_id, record_token=None).round_id is None

    carried = informed.shake(user_id=make_user().pk, record_token=None).schedule_token
    answer = deaf.shake(user_id=user_id, record_token=None, schedule_token=carried)

    assert answer.round_id == round_.pk
    assert answer.win is not None


def test_a_forged_or_older_schedule_is_ignored(user_id: int) -> None:
    round_ = approved_round(starts_in=-1.0)
    engine = engine_with(["client"])
    genuine = schedule_of(round_)
    ended = schedule_encode(
        type(genuine)(**{**_fields(genuine), "version": 10**9, "ended": True, "ends": 0.0})
    )
    head, _, _mac = ended.rpartition(".")
    forged = f"{head}.{'0' * 64}"

    assert not engine.schedule_apply_token(forged)
    assert not engine.schedule_apply_token(schedule_encode(genuine))  # not newer
    assert engine.shake(user_id=user_id, record_token=None, schedule_token=forged).win is not None


def _fields(schedule: Any) -> dict[str, Any]:
    return {name: getattr(schedule, name) for name in schedule.__slots__}


def test_the_shake_answer_carries_the_schedule_and_takes_it_back(client: Any) -> None:
    round_ = approved_round(starts_in=-1.0)
    session = login_session(make_user())
    headers = {"HTTP_AUTHORIZATION": f"Ticket {session.token}"}
    with override_settings(SHAKE_ENGINE_THREAD=False):
        from shake.access import engine

        engine().step(force=True)
        first = client.post("/api/shake", {}, content_type="application/json", **headers)
        schedule = first.json()["schedule"]
        again = client.post(
            "/api/shake",
            {"record": first.json()["record"], "schedule": schedule["token"]},
            content_type="application/json",
            **headers,
        )
    assert first.status_code == 200
    assert again.status_code == 200
    assert schedule["round"] == round_.pk
    assert schedule["version"] == 0
    assert schedule["paused"] is False
    assert schedule["starts_at"].startswith(str(round_.latest_start.year))


def test_the_control_page_is_for_operators_only(client: Any) -> None:
    round_ = waiting_round()
    assert client.get("/operators/shake/").status_code == 302  # to the login
    client.force_login(make_user())
    assert client.get("/operators/shake/").status_code == 302
    assert client.post(f"/operators/shake/rounds/{round_.pk}/start").status_code == 302
    assert not RoundControlEvent.objects.exists()


def test_an_operator_starts_the_next_round_from_the_page(client: Any) -> None:
    round_ = waiting_round()
    operator = make_user(nickname="Ops")
    operator_grant(user=operator)
    client.force_login(operator)

    page = client.get("/operators/shake/").content.decode()
    assert f'data-round="{round_.pk}" data-state="waiting"' in page
    response = client.post(
        f"/operators/shake/activities/{round_.activity_id}/start-next", {"reason": "go"}
    )
    assert response.status_code == 302
    page = client.get("/operators/shake/").content.decode()
    assert f'data-round="{round_.pk}" data-state="running"' in page
    event = RoundControlEvent.objects.get()
    assert (event.round_id, event.action, event.actor_id) == (round_.pk, "start", operator.pk)

    response = client.post(f"/operators/shake/rounds/{round_.pk}/countdown", {"at": "60"})
    page = client.get("/operators/shake/").content.decode()
    assert "has started already" in page  # refused, and said so
    assert RoundControlEvent.objects.count() == 1


def test_an_old_schedule_replayed_after_the_end_does_not_bring_the_round_back(
    user_id: int,
) -> None:
    round_ = approved_round(starts_in=-1.0)
    engine = engine_with(["poll", "client"])
    running = engine.shake(user_id=user_id, record_token=None).schedule_token
    control.round_end(round_id=round_.pk, actor=None)
    engine.step(force=True)
    assert round_.pk not in engine.rounds  # over: dropped from memory

    assert not engine.schedule_apply_token(running)
    answer = engine.shake(user_id=make_user().pk, record_token=None, schedule_token=running)
    assert answer.round_id is None


def test_operators_see_a_rounds_stagger_on_the_control_page_and_the_admin(client: Any) -> None:
    # given: a round whose 5 groups start 60 s apart, and an operator (not a superuser)
    round_ = approved_round(starts_in=-1.0, stagger=60)
    operator = make_user(nickname="Ops")
    operator_grant(user=operator)
    client.force_login(operator)
    # when: the operator opens the control page and the activity in the admin
    page = client.get("/operators/shake/").content.decode()
    admin = client.get(f"/admin/shake/activity/{round_.activity_id}/change/")
    # then: the groups, their stagger and when the last starts; the round's stagger
    last = round_.latest_start + timedelta(seconds=4 * 60)
    assert f"5 groups, 60 s apart; the last starts {last:%H:%M:%S}" in page
    assert admin.status_code == 200
    assert "Stagger seconds" in admin.content.decode()


def test_stagger__changed_before_the_start__audited_and_taken_by_a_polling_engine() -> None:
    # given: a round waiting for its countdown, its groups not staggered
    round_ = waiting_round(countdown_in=600)
    operator = make_user(nickname="Ops")
    engine = engine_with(["poll"])
    user_id = make_user().pk
    assert engine.shake(user_id=user_id, record_token=None).schedule.stagger == 0  # type: ignore[union-attr]
    # when: an operator spreads its groups 2 minutes apart
    control.round_stagger_set(
        round_id=round_.pk, stagger_seconds=120, actor=operator, reason="load"
    )
    engine.step(force=True)
    # then: audited, with the stagger before and after, and the engine holds it
    event = RoundControlEvent.objects.get()
    assert (event.action, event.actor, event.reason) == ("stagger", operator, "load")
    assert (event.before["stagger"], event.after["stagger"]) == (0, 120)
    answer = engine.shake(user_id=user_id, record_token=None)
    assert answer.schedule is not None
    assert (answer.schedule.stagger, answer.schedule.version) == (120, event.pk)
    group = answer.schedule.group_of(user_id)
    assert answer.opens == pytest.approx(round_.latest_start.timestamp() + group * 120)


def test_stagger__refused_once_the_round_started__or_out_of_range() -> None:
    round_ = waiting_round()
    with pytest.raises(PlanInvalid, match="0 or 60 to 300"):
        control.round_stagger_set(round_id=round_.pk, stagger_seconds=30, actor=None)
    with pytest.raises(PlanInvalid, match="after the round"):  # 4 groups x 150 s >= 600 s
        control.round_stagger_set(round_id=round_.pk, stagger_seconds=150, actor=None)
    with pytest.raises(ControlRefused, match="already"):
        control.round_stagger_set(round_id=round_.pk, stagger_seconds=0, actor=None)
    control.round_start(round_id=round_.pk, actor=None)
    with pytest.raises(ControlRefused, match="has started"):
        control.round_stagger_set(round_id=round_.pk, stagger_seconds=60, actor=None)
    round_.refresh_from_db()
    assert round_.stagger_seconds == 0
    assert list(RoundControlEvent.objects.values_list("action", flat=True)) == ["start"]


def test_stagger__changed_from_the_operators_page__refused_there_once_started(client: Any) -> None:
    round_ = waiting_round()
    operator = make_user(nickname="Ops")
    operator_grant(user=operator)
    client.force_login(operator)
    url = f"/operators/shake/rounds/{round_.pk}/stagger"

    client.post(url, {"stagger": "60", "reason": "spread"})
    page = client.get("/operators/shake/").content.decode()
    assert "5 groups, 60 s apart" in page
    client.post(url, {"stagger": "a minute"})
    assert "whole number of seconds" in client.get("/operators/shake/").content.decode()
    control.round_start(round_id=round_.pk, actor=None)
    client.post(url, {"stagger": "90"})
    page = client.get("/operators/shake/").content.decode()
    assert "its stagger can no longer change" in page
    round_.refresh_from_db()
    assert round_.stagger_seconds == 60
    assert [event.actor_id for event in RoundControlEvent.objects.filter(action="stagger")] == [
        operator.pk
    ]
