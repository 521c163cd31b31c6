"""Alert rules: thresholds and history comparisons, pending → firing → resolved,
deduplicated notifications, silences, and the admin's validation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.services.operators import operator_grant
from monitoring.models import Alert, AlertRule, Notification, NotificationChannel, Silence
from monitoring.services.alerts import alert_rule_check, alerts_evaluate, rule_judge
from monitoring.services.history import DeltaTracker, history_write
from tests.factories import make_user
from wechat_core.metrics import SeriesValue

pytestmark = pytest.mark.django_db
FAMILY = "http_requests_total"  # declared by the framework (monitoring.instrument.http)


@pytest.fixture(autouse=True)
def _a_moment_of_our_own() -> Iterator[None]:
    """Live servers of the suite write their real request counts into the same history
    while these tests run: the tests judge a moment a year ahead, whose history (and
    the day before it) holds only what they write."""
    with time_machine.travel(timezone.now() + timedelta(days=365), tick=True):
        yield


@pytest.fixture(autouse=True)
def _only_our_rules() -> None:
    AlertRule.objects.all().delete()
    NotificationChannel.objects.all().delete()
    NotificationChannel.objects.create(name="chat", kind="chat")
    NotificationChannel.objects.create(name="mail", kind="email", min_severity="critical")


def requests(ended: dt.datetime, ok: int, errors: int) -> None:
    values = [
        SeriesValue(FAMILY, "counter", "value", None, (("outcome", outcome),), float(count))
        for outcome, count in (("2xx", ok), ("5xx", errors))
        if count
    ]
    history_write(deltas=DeltaTracker().deltas(values), ended=ended, instance="t:1")


def error_rule(**overrides) -> AlertRule:
    values = {
        "name": "errors",
        "metric": FAMILY,
        "aggregation": "ratio",
        "numerator_labels": {"outcome": "5xx"},
        "window_seconds": 60,
        "comparison": "above",
        "threshold": 0.1,
        "min_volume": 10,
        "for_seconds": 60,
        "severity": "warning",
    }
    values.update(overrides)
    return AlertRule.objects.create(**values)


def traffic_drop_rule(**overrides) -> AlertRule:
    """Requests per second below half of what they were a day ago."""
    values = {
        "name": "drop",
        "metric": FAMILY,
        "aggregation": "rate",
        "window_seconds": 120,
        "comparison": "below_history",
        "history_offset": 86400,
        "threshold": 0.5,
        "min_volume": 50,
    }
    values.update(overrides)
    return AlertRule.objects.create(**values)


def test_lifecycle__errors_for_longer_than_for_seconds__pending_then_firing_then_resolved() -> None:
    rule = error_rule()
    t0 = timezone.now()
    # given: half the requests fail
    requests(t0 - timedelta(seconds=30), ok=10, errors=10)
    # when / then: pending first
    alerts_evaluate(now=t0)
    alert = Alert.objects.get(rule=rule)
    assert alert.state == "pending"
    # still failing a minute later: firing, and each matching channel gets one notice
    requests(t0 + timedelta(seconds=40), ok=10, errors=10)
    alerts_evaluate(now=t0 + timedelta(seconds=61))
    alert.refresh_from_db()
    assert alert.state == "firing"
    # evaluating again while firing notifies nobody again
    requests(t0 + timedelta(seconds=70), ok=10, errors=10)
    alerts_evaluate(now=t0 + timedelta(seconds=75))
    assert list(Notification.objects.values_list("channel__name", "kind")) == [("chat", "firing")]
    # the errors stop: resolved, one resolved notice on the same channel
    requests(t0 + timedelta(seconds=150), ok=50, errors=0)
    alerts_evaluate(now=t0 + timedelta(seconds=160))
    alert.refresh_from_db()
    assert alert.state == "resolved"
    assert sorted(Notification.objects.values_list("channel__name", "kind")) == [
        ("chat", "firing"),
        ("chat", "resolved"),
    ]
    kinds = list(alert.events.order_by("at", "id").values_list("kind", flat=True))
    assert kinds == ["pending", "firing", "resolved"]
    assert Alert.objects.count() == 1


def test_lifecycle__condition_stops_before_for_seconds__cancelled_without_notice() -> None:
    rule = error_rule(for_seconds=300)
    t0 = timezone.now()
    requests(t0 - timedelta(seconds=30), ok=10, errors=10)
    alerts_evaluate(now=t0)
    requests(t0 + timedelta(seconds=90), ok=30, errors=0)
    alerts_evaluate(now=t0 + timedelta(seconds=100))
    assert Alert.objects.get(rule=rule).state == "cancelled"
    assert Notification.objects.count() == 0


def test_threshold__below_min_volume__is_not_judged() -> None:
    rule = error_rule(min_volume=100)
    requests(timezone.now() - timedelta(seconds=30), ok=1, errors=5)
    verdict = rule_judge(rule=rule)
    assert verdict.holds is None
    assert alerts_evaluate() == 0


def test_silence__while_firing__holds_the_notice_until_it_ends() -> None:
    rule = error_rule(for_seconds=0)
    t0 = timezone.now()
    Silence.objects.create(
        rule=rule,
        starts_at=t0 - timedelta(minutes=1),
        ends_at=t0 + timedelta(seconds=30),
        comment="maintenance",
    )
    requests(t0 - timedelta(seconds=20), ok=10, errors=10)
    alerts_evaluate(now=t0)
    alert = Alert.objects.get(rule=rule)
    assert (alert.state, Notification.objects.count()) == ("firing", 0)
    assert alert.events.filter(kind="silenced").exists()
    # when the silence is over and it still fires, the notice goes out once
    requests(t0 + timedelta(seconds=25), ok=10, errors=10)
    alerts_evaluate(now=t0 + timedelta(seconds=40))
    assert Notification.objects.count() == 1


def test_history_comparison__traffic_halved_against_yesterday__fires() -> None:
    rule = traffic_drop_rule(severity="critical")
    now = timezone.now()
    # yesterday, mid-window: the past window is cut at minutes, so 60 s ago fell out of
    # it when the test ran in the first seconds of a minute
    requests(now - timedelta(days=1, seconds=90), ok=200, errors=0)
    requests(now - timedelta(seconds=60), ok=60, errors=0)  # today: 30 %
    verdict = rule_judge(rule=rule, now=now)
    assert verdict.holds is True
    assert "0.3x" in verdict.explanation
    alerts_evaluate(now=now)
    assert Alert.objects.get(rule=rule).state == "firing"
    assert sorted(Notification.objects.values_list("channel__name", flat=True)) == ["chat", "mail"]


def test_history_comparison__too_little_history__is_not_judged() -> None:
    rule = traffic_drop_rule(history_offset=7 * 86400)
    requests(timezone.now() - timedelta(seconds=60), ok=1, errors=0)
    assert rule_judge(rule=rule).holds is None


def test_traffic_stopped__below_history_on_a_rate__counts_as_zero_and_fires() -> None:
    rule = traffic_drop_rule(name="silent")
    requests(timezone.now() - timedelta(days=1, seconds=90), ok=500, errors=0)
    assert rule_judge(rule=rule).holds is True


def test_admin_form__unknown_metric_or_wrong_aggregation__is_refused(client) -> None:
    operator = make_user(nickname="Ops")
    operator_grant(user=operator, superuser=True)
    client.force_login(operator)
    base = {
        "name": "x",
        "metric": "no_such_metric",
        "aggregation": "rate",
        "window_seconds": 60,
        "comparison": "above",
        "threshold": 1,
        "min_volume": 0,
        "for_seconds": 0,
        "severity": "warning",
        "labels": "{}",
        "numerator_labels": "{}",
        "enabled": "on",
    }
    refused = client.post("/admin/monitoring/alertrule/add/", base)
    assert b"Unknown metric" in refused.content
    wrong = client.post(
        "/admin/monitoring/alertrule/add/", {**base, "metric": FAMILY, "aggregation": "p99"}
    )
    assert b"Not for a counter" in wrong.content
    accepted = client.post("/admin/monitoring/alertrule/add/", {**base, "metric": FAMILY})
    assert accepted.status_code == 302
    assert AlertRule.objects.filter(name="x").exists()


def test_default_rules__shipped_by_migration__cover_errors_latency_queues_and_delay() -> None:
    from importlib import import_module

    rules = import_module("monitoring.migrations.0002_default_rules").RULES
    for rule in rules:  # each one can be judged (what the admin form would accept)
        alert_rule_check(
            metric=rule["metric"], aggregation=rule["aggregation"],
            labels=rule.get("labels", {}), numerator_labels=rule.get("numerator_labels", {}),
            bucket_bound=rule.get("bucket_bound"), comparison=rule["comparison"],
            history_offset=rule.get("history_offset"),
        )  # fmt: skip
    metrics = {rule["metric"] for rule in rules}
    assert {
        "http_requests_total",
        "http_request_duration_seconds",
        "celery_queue_length",
        "messaging_delivery_delay_seconds",
    } <= metrics


def test_history_page__after_an_incident__lists_its_transitions_and_notices(client) -> None:
    # given: an alert that fired and resolved
    rule = error_rule(for_seconds=0, name="Checkout errors")
    t0 = timezone.now()
    requests(t0 - timedelta(seconds=20), ok=10, errors=10)
    alerts_evaluate(now=t0)
    requests(t0 + timedelta(seconds=80), ok=50, errors=0)
    alerts_evaluate(now=t0 + timedelta(seconds=90))
    alert = Alert.objects.get(rule=rule)
    operator = make_user(nickname="Ops")
    operator_grant(user=operator)
    client.force_login(operator)
    # when: an operator opens the history and the alert
    history = client.get("/monitoring/alerts").content.decode()
    detail = client.get(f"/monitoring/alerts/{alert.pk}").content.decode()
    # then: every transition is listed, and where the notices went
    assert history.count("Checkout errors") >= 3  # pending, firing, resolved rows
    for kind in ("pending", "firing", "resolved"):
        assert f'class="state-{kind}">{kind}<' in history
    assert "Nothing firing." in history
    assert detail.count("<td>chat</td>") == 2  # the firing and the resolved notice


def test_history_pages__non_staff__refused(client) -> None:
    client.force_login(make_user())
    assert client.get("/monitoring/alerts").status_code == 302
    assert client.get("/monitoring/alerts/1").status_code == 302
