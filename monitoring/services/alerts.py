"""Alert evaluation and lifecycle: pending → firing → resolved, deduplicated, silenced.

`alerts_evaluate` runs every MONITORING_EVALUATE_SECONDS (Celery beat, queue
`monitoring`; the in-process scheduler in the embedded mode). Each enabled rule
is judged on the settled history (selectors.window_value) in its own
transaction with the rule's row locked, so two evaluators never open two alerts
for one rule (a partial unique constraint backs that up). A transition creates
one `Notification` per matching channel, unique per (alert, channel, kind), and
enqueues its delivery after commit: each channel hears of a firing and of its
resolution exactly once, whatever the number of evaluations in between.

Rules another app judges (`AlertRule.source`, e.g. grayrelease's rollout
guards, which compare two label sets) are skipped here: that app reports its
verdicts through `alert_verdict_record`, and they go through the same
lifecycle, silences and notifications.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from monitoring.exceptions import InvalidAlertRule
from monitoring.models import (
    Aggregation,
    Alert,
    AlertEvent,
    AlertRule,
    AlertState,
    Comparison,
    Notification,
    NotificationChannel,
    Silence,
)
from monitoring.models.alerts import SEVERITY_RANK
from monitoring.selectors import Query, WindowValue, settled_until, window_value
from wechat_core.metrics import FAMILIES
from wechat_core.transactions import enqueue_on_commit

logger = logging.getLogger(__name__)
# Aggregations for which "no data" means zero (traffic stopped), not "unknown".
_COUNTING = {Aggregation.RATE, Aggregation.INCREASE}


@dataclass(frozen=True, slots=True)
class Verdict:
    holds: bool | None  # None: not enough data to judge
    value: float | None
    explanation: str


# Which aggregations make sense for which kind of metric.
AGGREGATIONS_BY_KIND = {
    "counter": {Aggregation.RATE, Aggregation.INCREASE, Aggregation.RATIO},
    "histogram": {
        Aggregation.P50,
        Aggregation.P95,
        Aggregation.P99,
        Aggregation.MEAN,
        Aggregation.SHARE_ABOVE,
        Aggregation.RATIO,
        Aggregation.RATE,
    },
    "gauge": {Aggregation.LAST, Aggregation.MAX},
}


def alert_rule_check(
    *,
    metric: str,
    aggregation: str,
    labels: Any,
    numerator_labels: Any,
    bucket_bound: float | None,
    comparison: str,
    history_offset: int | None,
) -> None:
    """Refuse a rule that could never be judged (InvalidAlertRule, `details.field`):
    an unknown metric, an aggregation not made for its kind, labels it does not
    have, share_above without a bound, a history comparison without an offset."""
    family = FAMILIES.get(metric)
    if family is None:
        known = ", ".join(sorted(FAMILIES))
        raise InvalidAlertRule(f"Unknown metric. Known: {known}", details={"field": "metric"})
    if aggregation not in AGGREGATIONS_BY_KIND[family.kind]:
        raise InvalidAlertRule(f"Not for a {family.kind}.", details={"field": "aggregation"})
    for name, given in (("labels", labels), ("numerator_labels", numerator_labels)):
        if not isinstance(given, Mapping):
            raise InvalidAlertRule(
                'Label filters are an object, e.g. {"module": "messaging"}.',
                details={"field": name},
            )
        unknown = set(given) - set(family.label_names)
        if unknown:
            raise InvalidAlertRule(
                f"{family.name} has no label {', '.join(sorted(unknown))}.",
                details={"field": name},
            )
    if aggregation == Aggregation.SHARE_ABOVE and bucket_bound is None:
        raise InvalidAlertRule(
            "share_above needs a bucket bound.", details={"field": "bucket_bound"}
        )
    history = comparison in (Comparison.ABOVE_HISTORY, Comparison.BELOW_HISTORY)
    if history and not history_offset:
        raise InvalidAlertRule(
            "Compare with yesterday or last week.", details={"field": "history_offset"}
        )


def rule_query(rule: AlertRule) -> Query:
    return Query(
        family=rule.metric,
        aggregation=rule.aggregation,
        filters=rule.labels or {},
        numerator=(rule.numerator_labels or {}) if rule.aggregation == Aggregation.RATIO else None,
        bound=rule.bucket_bound,
    )


def _compare(value: float, comparison: str, threshold: float) -> bool:
    return (
        value > threshold
        if comparison in (Comparison.ABOVE, Comparison.ABOVE_HISTORY)
        else (value < threshold)
    )


def rule_judge(*, rule: AlertRule, now: dt.datetime | None = None) -> Verdict:
    """Whether the rule's condition holds over its window ending at the settled edge."""
    end = settled_until(now)
    start = end - timedelta(seconds=rule.window_seconds)
    query = rule_query(rule)
    current = window_value(query=query, since=start, until=end)
    if rule.comparison in (Comparison.ABOVE, Comparison.BELOW):
        if current.value is None or current.volume < rule.min_volume:
            return Verdict(None, current.value, f"not enough data (volume {current.volume:g})")
        holds = _compare(current.value, rule.comparison, rule.threshold)
        return Verdict(holds, current.value, f"{current.value:.4g} vs threshold {rule.threshold:g}")
    offset = timedelta(seconds=rule.history_offset or 86400)
    past = window_value(query=query, since=start - offset, until=end - offset)
    return _judge_history(rule, current, past)


def _judge_history(rule: AlertRule, current: WindowValue, past: WindowValue) -> Verdict:
    if past.value is None or past.volume < rule.min_volume or past.value == 0:
        return Verdict(None, current.value, f"not enough history (volume {past.volume:g})")
    now_value = current.value
    if now_value is None and rule.aggregation in _COUNTING:
        now_value = 0.0
    if now_value is None:
        return Verdict(None, None, "no data now")
    ratio = now_value / past.value
    return Verdict(
        _compare(ratio, rule.comparison, rule.threshold),
        now_value,
        f"{now_value:.4g} is {ratio:.3g}x the past {past.value:.4g} "
        f"(threshold {rule.threshold:g}x)",
    )


def rule_silenced(*, rule: AlertRule, now: dt.datetime) -> bool:
    return Silence.objects.filter(
        Q(rule=rule) | Q(rule__isnull=True), starts_at__lte=now, ends_at__gt=now
    ).exists()


def alerts_evaluate(*, now: dt.datetime | None = None) -> int:
    """Judge every enabled rule once; returns how many alerts changed state."""
    now = now or timezone.now()
    changed = 0
    judged_here = AlertRule.objects.filter(enabled=True, source="")
    for rule_id in judged_here.values_list("pk", flat=True):
        try:
            with transaction.atomic():
                rule = AlertRule.objects.select_for_update().get(pk=rule_id)
                changed += _evaluate(rule, now)
        except Exception:
            logger.exception("evaluating alert rule %s failed", rule_id)
    return changed


def _evaluate(rule: AlertRule, now: dt.datetime) -> int:
    return _apply(rule, rule_judge(rule=rule, now=now), now)


def _apply(rule: AlertRule, verdict: Verdict, now: dt.datetime) -> int:
    """Move the rule's open alert (if any) by this verdict; the rule is locked."""
    alert = (
        Alert.objects.select_for_update()
        .filter(rule=rule, state__in=[AlertState.PENDING, AlertState.FIRING])
        .first()
    )
    if not verdict.holds:
        if alert is None:
            return 0
        _close(alert, now, verdict)
        return 1
    changed = 0
    if alert is None:
        alert = Alert.objects.create(
            rule=rule,
            state=AlertState.PENDING,
            started_at=now,
            evaluated_at=now,
            value=verdict.value,
        )
        _event(alert, "pending", now, verdict)
        changed = 1
    if alert.state == AlertState.PENDING and now - alert.started_at >= timedelta(
        seconds=rule.for_seconds
    ):
        alert.state, alert.fired_at = AlertState.FIRING, now
        _event(alert, "firing", now, verdict)
        changed = 1
    alert.value, alert.evaluated_at = verdict.value, now
    if alert.state == AlertState.FIRING and not alert.notified:
        if rule_silenced(rule=rule, now=now):
            if not alert.events.filter(kind="silenced").exists():
                _event(alert, "silenced", now, verdict)
        else:
            alert.notified = True
            _notify(alert, "firing")
    alert.save(update_fields=["state", "fired_at", "value", "evaluated_at", "notified"])
    return changed


def _close(alert: Alert, now: dt.datetime, verdict: Verdict) -> None:
    firing = alert.state == AlertState.FIRING
    alert.state = AlertState.RESOLVED if firing else AlertState.CANCELLED
    alert.ended_at, alert.evaluated_at = now, now
    alert.save(update_fields=["state", "ended_at", "evaluated_at"])
    _event(alert, "resolved" if firing else "cancelled", now, verdict)
    if firing and alert.notified:
        _notify(alert, "resolved")


def _event(alert: Alert, kind: str, now: dt.datetime, verdict: Verdict) -> None:
    AlertEvent.objects.create(
        alert=alert, kind=kind, at=now, value=verdict.value, message=verdict.explanation
    )


def _notify(alert: Alert, kind: str) -> None:
    rank = SEVERITY_RANK[alert.rule.severity]  # type: ignore[index]
    for channel in NotificationChannel.objects.filter(enabled=True):
        if SEVERITY_RANK[channel.min_severity] > rank:  # type: ignore[index]
            continue
        notification, created = Notification.objects.get_or_create(
            alert=alert, channel=channel, kind=kind
        )
        if created:
            enqueue_on_commit(
                "monitoring.tasks.deliver_notification", notification.pk, name="alert_notify"
            )


# --- Rules judged by another app ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExternalRule:
    """A rule another app judges, as the admin, history page and notices show it."""

    source: str
    name: str
    description: str
    metric: str
    aggregation: str
    threshold: float
    window_seconds: int
    severity: str
    labels: Mapping[str, Any] = field(default_factory=dict)
    numerator_labels: Mapping[str, Any] = field(default_factory=dict)
    min_volume: float = 0.0

    def fields(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "metric": self.metric,
            "aggregation": self.aggregation,
            "threshold": self.threshold,
            "window_seconds": self.window_seconds,
            "severity": self.severity,
            "labels": dict(self.labels),
            "numerator_labels": dict(self.numerator_labels),
            "min_volume": self.min_volume,
            "comparison": Comparison.ABOVE,
            "for_seconds": 0,
        }


def _external_rule_lock(rule: ExternalRule) -> AlertRule | None:
    """The rule's row, created or brought up to date, locked; None if an operator's
    own rule has the name."""
    row = AlertRule.objects.select_for_update().filter(name=rule.name).first()
    if row is None:
        return AlertRule.objects.create(name=rule.name, source=rule.source, **rule.fields())
    if row.source != rule.source:
        logger.error("alert rule %r belongs to %r, not %r", rule.name, row.source, rule.source)
        return None
    wanted = rule.fields()
    changed = [name for name, value in wanted.items() if getattr(row, name) != value]
    if changed:
        for name in changed:
            setattr(row, name, wanted[name])
        row.save(update_fields=[*changed, "updated_at"])
    return row


@transaction.atomic
def alert_verdict_record(
    *, rule: ExternalRule, verdict: Verdict, now: dt.datetime | None = None
) -> bool:
    """Record another app's verdict on its rule: an alert opens (and, the rule
    having no for-duration, fires and notifies) while the verdict holds, and
    resolves when it stops. Returns whether the alert changed state. A rule an
    operator disabled in the admin stays as it is."""
    row = _external_rule_lock(rule)
    if row is None or not row.enabled:
        return False
    return _apply(row, verdict, now or timezone.now()) > 0


def alert_rules_retire(*, source: str, keep: Iterable[str], now: dt.datetime | None = None) -> int:
    """Resolve the open alerts of `source`'s rules other than those named in `keep`
    (what they watched is gone); returns how many."""
    moment = now or timezone.now()
    stale = (
        AlertRule.objects.filter(
            source=source, alerts__state__in=[AlertState.PENDING, AlertState.FIRING]
        )
        .exclude(name__in=list(keep))
        .distinct()
    )
    retired = 0
    for rule_id in stale.values_list("pk", flat=True):
        with transaction.atomic():
            row = AlertRule.objects.select_for_update().get(pk=rule_id)
            retired += _apply(row, Verdict(None, None, "no longer watched"), moment)
    return retired
