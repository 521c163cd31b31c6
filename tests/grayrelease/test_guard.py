"""Guarded rollouts: outcomes recorded per variant, and the guard (Celery beat)
pausing or rolling back a rollout whose treated users fail more than its
control group, audited as the guard's change and alerted through monitoring."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from grayrelease.evaluation import FEATURE_OUTCOMES, evaluate, feature_outcome
from grayrelease.exceptions import InvalidRule
from grayrelease.models import ChangeAction, Feature, FeatureChange, ScheduleStatus
from grayrelease.selectors import feature_get
from grayrelease.services.features import feature_update
from grayrelease.services.guard import guard_rule_name, rollout_guards_check
from grayrelease.services.schedule import feature_schedule_resume, feature_schedule_start
from grayrelease.specs import change_summary, feature_spec_of
from grayrelease.tasks import check_rollout_guards
from grayrelease.types import GuardAction, GuardSpec, GuardState, Reason, StageSpec, Subject
from monitoring.models import Alert, AlertRule, Notification, NotificationChannel
from monitoring.services.history import DeltaTracker, history_write
from tests.factories import make_feature, make_user
from wechat_core.errors import InvalidInput
from wechat_core.metrics import SeriesValue, sample_value, snapshot

pytestmark = pytest.mark.django_db

KEY = "svc.guarded"
STAGES = (StageSpec(5000, 60), StageSpec(10_000, 0))


@pytest.fixture(autouse=True)
def _channels() -> None:
    AlertRule.objects.all().delete()
    NotificationChannel.objects.all().delete()
    NotificationChannel.objects.create(name="ops chat", kind="chat")
    NotificationChannel.objects.create(name="am", kind="webhook", target="http://127.0.0.1:9/")


def guarded(action: GuardAction = GuardAction.ROLLBACK, **spec: object) -> Feature:
    """A guarded feature at 50 % with a running schedule (margin 10 points, 20
    outcomes per variant, a 60 s window), as if started ten minutes ago: the
    history these tests write lies in the past, and the guard ignores outcomes
    from before a rollout's last start."""
    guard = GuardSpec(margin_bp=1000, min_sample=20, window_seconds=60, action=action)
    make_feature(KEY, percentage_bp=0, stages=STAGES, guard=guard, **spec)
    feature_schedule_start(key=KEY, actor=None)
    Feature.objects.filter(key=KEY).update(guard_since=timezone.now() - timedelta(minutes=10))
    return feature_get(key=KEY)


def ago(seconds: float) -> dt.datetime:
    return timezone.now() - timedelta(seconds=seconds)


def outcomes(ended: dt.datetime, **counts: int) -> None:
    """Outcomes as a process's flush writes them: on_ok=30, off_error=2, …"""
    values = []
    for name, count in counts.items():
        variant, outcome = name.split("_")
        labels = {"feature": KEY, "variant": variant, "outcome": outcome, "campus": "x",
                  "datacenter": "y"}  # fmt: skip
        values.append(
            SeriesValue(
                FEATURE_OUTCOMES.name, "counter", "value", None, tuple(sorted(labels.items())),
                float(count),
            )
        )  # fmt: skip
    history_write(deltas=DeltaTracker().deltas(values), ended=ended, instance="t:1")


def users_in_variants(feature_key: str) -> tuple[Subject, Subject]:
    """A user in the rollout and one out of it."""
    treated = control = None
    for user_id in range(1, 500):
        subject = Subject(user_id=user_id)
        reason = evaluate(key=feature_key, subject=subject).reason
        if reason == Reason.IN_ROLLOUT and treated is None:
            treated = subject
        elif reason == Reason.OUT_OF_ROLLOUT and control is None:
            control = subject
    assert treated is not None
    assert control is not None
    return treated, control


def counted(variant: str, outcome: str, key: str = KEY) -> float:
    return sample_value(FEATURE_OUTCOMES.name, feature=key, variant=variant, outcome=outcome)


# --- Recording outcomes ----------------------------------------------------------------


def test_feature_outcome__guarded_feature__counts_each_variant_and_what_went_wrong() -> None:
    # given: a guarded feature at 50 %, a treated and a control user
    guarded()
    treated, control = users_in_variants(KEY)
    before = {(v, o): counted(v, o) for v in ("on", "off") for o in ("ok", "error")}
    # when: the treated path raises once and degrades once; the control path succeeds twice
    with (
        pytest.raises(RuntimeError),
        feature_outcome(key=KEY, decision=evaluate(key=KEY, subject=treated)),
    ):
        raise RuntimeError("the new path broke")
    with feature_outcome(key=KEY, decision=evaluate(key=KEY, subject=treated)) as outcome:
        outcome.fail()
    for _ in range(2):
        with feature_outcome(key=KEY, decision=evaluate(key=KEY, subject=control)):
            pass
    # and a refusal the user is told about is the code path working, not failing
    with (
        pytest.raises(InvalidInput),
        feature_outcome(key=KEY, decision=evaluate(key=KEY, subject=treated)),
    ):
        raise InvalidInput("bad input")
    # then
    after = {(v, o): counted(v, o) for v in ("on", "off") for o in ("ok", "error")}
    assert {k: after[k] - before[k] for k in after} == {
        ("on", "ok"): 1,
        ("on", "error"): 2,
        ("off", "ok"): 2,
        ("off", "error"): 0,
    }


def test_feature_outcome__unguarded_or_decided_by_targeting__counts_nothing() -> None:
    # given: an unguarded feature, and a guarded one with a tester on its allow list
    make_feature("svc.plain", percentage_bp=5000)
    tester = Subject(user_id=make_user().pk)
    guarded(allow=(str(tester.user_id),))
    plain_treated, _ = users_in_variants("svc.plain")
    families_before = {v.labels for v in snapshot([FEATURE_OUTCOMES])}
    assert evaluate(key=KEY, subject=tester).reason == Reason.ALLOWED
    before = counted("on", "error")
    # when
    with feature_outcome(
        key="svc.plain", decision=evaluate(key="svc.plain", subject=plain_treated)
    ):
        pass
    with feature_outcome(key=KEY, decision=evaluate(key=KEY, subject=tester)) as outcome:
        outcome.fail()
    # then: no series for the unguarded feature, no count for the tester
    labels = {v.labels for v in snapshot([FEATURE_OUTCOMES])}
    assert labels == families_before
    assert not any(("feature", "svc.plain") in series for series in labels)
    assert counted("on", "error") == before


# --- The guard ------------------------------------------------------------------------


def test_guard__treated_fail_beyond_the_margin__rolls_back_to_zero_audited_and_alerted() -> None:
    # given: a running 50 % stage; treated users fail half the time, the control never
    guarded(GuardAction.ROLLBACK)
    outcomes(ago(30), on_ok=30, on_error=30, off_ok=60)
    # when: beat's tick
    checks = rollout_guards_check()
    # then: rolled back to 0 %, the schedule back to its start
    assert [(c.key, c.state, c.action) for c in checks] == [
        (KEY, GuardState.TRIPPED, ChangeAction.GUARD_ROLLED_BACK)
    ]
    after = feature_get(key=KEY)
    assert (after.percentage_bp, after.schedule_status, after.stage_position) == (
        0,
        ScheduleStatus.IDLE,
        None,
    )
    assert after.guard_state == GuardState.TRIPPED
    assert "treated 50.00 % of 60, control 0.00 % of 60" in after.guard_explanation
    # audited as a change by no operator, saying why
    change = FeatureChange.objects.filter(feature_key=KEY).first()
    assert change is not None
    assert (change.action, change.actor, change.actor_label) == (
        ChangeAction.GUARD_ROLLED_BACK,
        None,
        "rollout guard",
    )
    assert "beyond the margin 10.00 points" in change.comment
    assert "rolled back from 50.00 % to 0 %" in change.comment
    assert "percentage_bp: 50.00 % → 0.00 %" in change_summary(change.before, change.after)
    # and operators are alerted through monitoring, once per channel
    rule = AlertRule.objects.get(name=guard_rule_name(KEY))
    assert (rule.source, rule.metric, rule.labels) == (
        "grayrelease",
        "grayrelease_requests_total",
        {"feature": KEY, "variant": "on"},
    )
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "firing"
    assert sorted(
        Notification.objects.filter(alert=alert).values_list("channel__name", "kind")
    ) == [
        ("am", "firing"),
        ("ops chat", "firing"),
    ]
    assert "rolled back" in alert.events.get(kind="firing").message


def test_guard__same_evidence_on_the_next_ticks__changes_nothing_more_and_notifies_once() -> None:
    guarded(GuardAction.ROLLBACK)
    outcomes(ago(30), on_ok=30, on_error=30, off_ok=60)
    rollout_guards_check()
    changes = FeatureChange.objects.filter(feature_key=KEY).count()
    # when: two more ticks see the same failures in their window
    later = [rollout_guards_check(now=ago(-s)) for s in (5, 10)]
    # then: still tripped, nothing left to do, one alert, one notice per channel
    assert [[(c.state, c.action) for c in checks] for checks in later] == [
        [(GuardState.TRIPPED, None)],
        [(GuardState.TRIPPED, None)],
    ]
    assert FeatureChange.objects.filter(feature_key=KEY).count() == changes
    assert Alert.objects.count() == 1
    assert Notification.objects.count() == 2
    assert "already at 0 %" in feature_get(key=KEY).guard_explanation


def test_guard__pause_action__pauses_the_schedule_and_keeps_the_percentage() -> None:
    guarded(GuardAction.PAUSE)
    outcomes(ago(30), on_ok=10, on_error=20, off_ok=40, off_error=1)
    # when
    rollout_guards_check()
    # then
    after = feature_get(key=KEY)
    assert (after.percentage_bp, after.schedule_status) == (5000, ScheduleStatus.PAUSED)
    change = FeatureChange.objects.filter(feature_key=KEY).first()
    assert change is not None
    assert (change.action, change.actor_label) == (ChangeAction.GUARD_PAUSED, "rollout guard")
    assert "schedule paused" in change.comment


def test_guard__within_the_margin_or_too_few_outcomes__leaves_the_rollout_alone() -> None:
    # given: treated 4 points worse than control (margin 10), then too few outcomes
    guarded()
    outcomes(ago(30), on_ok=96, on_error=4, off_ok=100)
    # when / then: healthy
    assert [c.state for c in rollout_guards_check()] == [GuardState.HEALTHY]
    assert feature_get(key=KEY).percentage_bp == 5000
    # when / then: a later window with only 19 treated outcomes, all failing: no verdict
    outcomes(ago(-100), on_error=19, off_ok=100)
    assert [c.state for c in rollout_guards_check(now=ago(-120))] == [GuardState.INSUFFICIENT]
    after = feature_get(key=KEY)
    assert (after.percentage_bp, after.schedule_status) == (5000, ScheduleStatus.RUNNING)
    assert after.guard_explanation.startswith("not enough outcomes (20 per variant needed)")
    assert not Alert.objects.exists()
    assert not FeatureChange.objects.filter(action__startswith="guard").exists()


def test_guard__operator_resumes_after_a_pause__old_failures_no_longer_count_and_it_resolves() -> (
    None
):
    # given: the guard paused the rollout
    feature = guarded(GuardAction.PAUSE)
    outcomes(ago(30), on_ok=10, on_error=20, off_ok=40)
    rollout_guards_check()
    # when: an operator resumes it (say, after a fix), and beat ticks with the old
    # failures still inside the window
    resumed = feature_schedule_resume(key=KEY, actor=None, comment="fixed")
    assert resumed.guard_since is not None
    assert resumed.guard_since > feature.guard_since  # type: ignore[operator]
    checks = rollout_guards_check(now=ago(-10))
    # then: no evidence since the resume, so no verdict, the schedule keeps running,
    # and the alert resolves (each channel told once)
    assert [c.state for c in checks] == [GuardState.INSUFFICIENT]
    assert feature_get(key=KEY).schedule_status == ScheduleStatus.RUNNING
    alert = Alert.objects.get()
    assert alert.state == "resolved"
    assert sorted(Notification.objects.values_list("channel__name", "kind")) == [
        ("am", "firing"),
        ("am", "resolved"),
        ("ops chat", "firing"),
        ("ops chat", "resolved"),
    ]


def test_guard__feature_unguarded_while_alerting__its_alert_resolves() -> None:
    guarded()
    outcomes(ago(30), on_ok=30, on_error=30, off_ok=60)
    rollout_guards_check()
    # when: an operator removes the guard
    spec = feature_spec_of(feature_get(key=KEY), with_stages=True)
    feature_update(key=KEY, spec=replace(spec, guard=None), actor=None)
    assert check_rollout_guards.apply().get() == []
    # then
    assert Alert.objects.get().state == "resolved"


def test_guard__settings_change__is_audited_before_and_after() -> None:
    feature = guarded()
    spec = feature_spec_of(feature_get(key=KEY), with_stages=True)
    assert spec.guard is not None
    feature_update(
        key=KEY, spec=replace(spec, guard=replace(spec.guard, margin_bp=250)), actor=None
    )
    change = FeatureChange.objects.filter(feature_key=KEY).first()
    assert change is not None
    lines = change_summary(change.before, change.after)
    assert any(line.startswith("guard: ") and '"margin_bp": 250' in line for line in lines), lines
    now_since, then_since = feature_get(key=KEY).guard_since, feature.guard_since
    assert now_since is not None
    assert then_since is not None
    assert now_since > then_since  # fresh evidence


@pytest.mark.parametrize(
    ("guard", "field", "says"),
    [
        (GuardSpec(margin_bp=0), "guard_margin_bp", "from 1 to 10000"),
        (GuardSpec(margin_bp=10_001), "guard_margin_bp", "from 1 to 10000"),
        (GuardSpec(min_sample=9), "guard_min_sample", "minimum sample per variant"),
        (GuardSpec(window_seconds=5), "guard_window_seconds", "window in seconds"),
        (GuardSpec(window_seconds=86_401), "guard_window_seconds", "window in seconds"),
        (GuardSpec(action="explode"), "guard_action", "'pause' or 'rollback'"),  # type: ignore[arg-type]
    ],
)
def test_guard_settings__out_of_range__are_refused_naming_the_setting(
    guard: GuardSpec, field: str, says: str
) -> None:
    with pytest.raises(InvalidRule) as refused:
        make_feature("svc.bad", guard=guard)
    assert refused.value.field == field
    assert says in refused.value.message
    assert not Feature.objects.filter(key="svc.bad").exists()


def test_guard_settings__more_guarded_features_than_the_limit__are_refused(
    settings: object,
) -> None:
    settings.GRAYRELEASE_GUARDED_MAX = 1  # type: ignore[attr-defined]
    make_feature("svc.one", guard=GuardSpec())
    with pytest.raises(InvalidRule) as refused:
        make_feature("svc.two", guard=GuardSpec())
    assert refused.value.field == "guarded"
    assert "at most 1 features may be guarded" in refused.value.message
    make_feature("svc.two")  # unguarded is fine
