"""Rules another app judges (AlertRule.source): monitoring's evaluator leaves them
alone; the app's verdicts go through the same lifecycle and notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import Alert, AlertRule, Notification, NotificationChannel
from monitoring.services.alerts import (
    ExternalRule,
    Verdict,
    alert_rules_retire,
    alert_verdict_record,
    alerts_evaluate,
)
from tests.monitoring.test_alerts import requests

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _only_our_channel() -> None:
    AlertRule.objects.all().delete()
    NotificationChannel.objects.all().delete()
    NotificationChannel.objects.create(name="chat", kind="chat")


def rule(name: str = "judged elsewhere") -> ExternalRule:
    return ExternalRule(
        source="someapp",
        name=name,
        description="Compared with its control by someapp.",
        metric="http_requests_total",
        aggregation="ratio",
        numerator_labels={"outcome": "5xx"},
        threshold=0.1,
        window_seconds=60,
        severity="critical",
    )


def test_verdicts__fire_once_then_resolve__each_notified_once() -> None:
    now = timezone.now()
    # when: the app says it holds, twice, then that it stopped
    assert alert_verdict_record(rule=rule(), verdict=Verdict(True, 0.5, "50 % vs 1 %"), now=now)
    again = Verdict(True, 0.6, "60 % vs 1 %")
    assert not alert_verdict_record(rule=rule(), verdict=again, now=now + timedelta(seconds=5))
    stopped = Verdict(False, 0.0, "0 % vs 1 %")
    assert alert_verdict_record(rule=rule(), verdict=stopped, now=now + timedelta(seconds=10))
    # then: one alert, fired at once (no for-duration) and resolved; one notice each way
    alert = Alert.objects.get()
    assert (alert.state, alert.rule.source) == ("resolved", "someapp")
    assert sorted(Notification.objects.values_list("kind", flat=True)) == ["firing", "resolved"]
    assert alert.events.get(kind="firing").message == "50 % vs 1 %"


def test_alerts_evaluate__rule_of_another_app__is_not_judged_here() -> None:
    # given: the app's rule exists, and its own fields would fire on this traffic
    alert_verdict_record(rule=rule(), verdict=Verdict(None, None, "no data"))
    requests(timezone.now() - timedelta(seconds=30), ok=1, errors=50)
    # when
    alerts_evaluate()
    # then
    assert not Alert.objects.exists()


def test_verdict__name_of_an_operators_rule__leaves_that_rule_alone() -> None:
    # given: an operator's own rule of the same name
    mine = AlertRule.objects.create(
        name="judged elsewhere", metric="http_requests_total", aggregation="rate", threshold=5
    )
    # when
    changed = alert_verdict_record(rule=rule(), verdict=Verdict(True, 1.0, "x"))
    # then
    mine.refresh_from_db()
    assert (changed, mine.source, mine.aggregation, mine.threshold) == (False, "", "rate", 5)
    assert not Alert.objects.exists()


def test_retire__rules_no_longer_watched__have_their_open_alerts_resolved() -> None:
    alert_verdict_record(rule=rule("kept"), verdict=Verdict(True, 1.0, "x"))
    alert_verdict_record(rule=rule("gone"), verdict=Verdict(True, 1.0, "x"))
    # when
    assert alert_rules_retire(source="someapp", keep=["kept"]) == 1
    # then
    states = dict(Alert.objects.values_list("rule__name", "state"))
    assert states == {"kept": "firing", "gone": "resolved"}
