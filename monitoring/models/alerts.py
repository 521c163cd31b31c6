"""Alert rules (edited in the admin), their alerts' lifecycle, silences, and where and
how notifications went.

An `Alert` is one incident of a rule: pending while the condition holds for less
than `for_seconds`, firing after, resolved when it stops holding. A rule has at
most one open (pending or firing) alert, which is what deduplicates: evaluating
again while it fires changes nothing but its last value. `AlertEvent` rows are
the history page. A `Notification` is one channel's delivery of one event
(firing or resolved), unique per (alert, channel, kind): each channel hears of
each transition at most once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Aggregation(models.TextChoices):
    RATE = "rate", "rate: increase per second (counters)"
    INCREASE = "increase", "increase over the window (counters)"
    RATIO = "ratio", "ratio: matching the numerator labels / all (counters, histogram counts)"
    P50 = "p50", "50th percentile (histograms)"
    P95 = "p95", "95th percentile (histograms)"
    P99 = "p99", "99th percentile (histograms)"
    MEAN = "mean", "mean (histograms)"
    SHARE_ABOVE = "share_above", "share of observations above `bucket_bound` (histograms)"
    LAST = "last", "last value (gauges, summed over processes)"
    MAX = "max", "maximum in the window (gauges)"


class Comparison(models.TextChoices):
    ABOVE = "above", "above the threshold"
    BELOW = "below", "below the threshold"
    ABOVE_HISTORY = "above_history", "above threshold x the same window in the past"
    BELOW_HISTORY = "below_history", "below threshold x the same window in the past"


class HistoryOffset(models.IntegerChoices):
    YESTERDAY = 86400, "the same minute yesterday"
    LAST_WEEK = 7 * 86400, "the same minute last week"


class Severity(models.TextChoices):
    INFO = "info", "info"
    WARNING = "warning", "warning"
    CRITICAL = "critical", "critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertRule(models.Model):
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    metric = models.CharField(max_length=120, help_text="A metric family, e.g. http_requests_total")
    labels = models.JSONField(
        default=dict,
        blank=True,
        help_text='Label filters, e.g. {"module": "messaging"}; a list '
        "matches any of its values, a value starting with ! excludes it.",
    )
    aggregation = models.CharField(max_length=12, choices=Aggregation.choices)
    numerator_labels = models.JSONField(
        default=dict,
        blank=True,
        help_text='For ratio: the numerator\'s extra filters, e.g. {"outcome": "5xx"}',
    )
    bucket_bound = models.FloatField(
        null=True, blank=True, help_text="For share_above: a bucket bound"
    )
    window_seconds = models.PositiveIntegerField(default=300)
    comparison = models.CharField(
        max_length=14, choices=Comparison.choices, default=Comparison.ABOVE
    )
    threshold = models.FloatField()
    history_offset = models.PositiveIntegerField(
        choices=HistoryOffset.choices,
        null=True,
        blank=True,
        help_text="For history comparisons: compare with this long ago",
    )
    min_volume = models.FloatField(
        default=0,
        help_text="Fewer observations (requests, receipts…) in the window than this: "
        "no judgement. History comparisons apply it to the past window.",
    )
    for_seconds = models.PositiveIntegerField(default=0, help_text="How long it must hold to fire")
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    # Empty: monitoring judges the rule from the fields above. Otherwise the app
    # that judges it ("grayrelease" for rollout guards) and reports its verdicts
    # (services.alerts.alert_verdict_record); the fields then describe what it
    # watches, and only that app changes them.
    source = models.CharField(max_length=40, blank=True, default="", editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlertState(models.TextChoices):
    PENDING = "pending", "pending"
    FIRING = "firing", "firing"
    RESOLVED = "resolved", "resolved"
    CANCELLED = "cancelled", "cancelled (stopped before firing)"


class Alert(models.Model):
    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    state = models.CharField(max_length=10, choices=AlertState.choices)
    started_at = models.DateTimeField()
    fired_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    value = models.FloatField(null=True, blank=True)
    evaluated_at = models.DateTimeField()
    # Whether the firing notice went out (it waits while a silence covers the rule).
    notified = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rule"],
                condition=Q(state__in=["pending", "firing"]),
                name="one_open_alert_per_rule",
            )
        ]
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.rule.name}: {self.state}"


class AlertEvent(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10)  # pending | firing | resolved | cancelled | silenced
    at = models.DateTimeField()
    value = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["at"], name="alertevent_by_time")]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at}"


class Silence(models.Model):
    """No notifications for the rule (or every rule) between starts_at and ends_at."""

    rule = models.ForeignKey(
        AlertRule,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="silences",
        help_text="Empty: every rule",
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    comment = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return f"silence {self.rule or 'all rules'} until {self.ends_at:%Y-%m-%d %H:%M}"


class ChannelKind(models.TextChoices):
    EMAIL = "email", "e-mail"
    WEBHOOK = "webhook", "webhook (Alertmanager JSON)"
    CHAT = "chat", "chat message from the monitoring account"


class NotificationChannel(models.Model):
    name = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=8, choices=ChannelKind.choices)
    target = models.TextField(
        blank=True,
        default="",
        help_text="E-mail: addresses, one per line (empty: every active "
        "operator's); webhook: the URL; chat: empty (every active operator)",
    )
    min_severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.INFO)
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "pending"
    SENT = "sent", "sent"
    FAILED = "failed", "failed"


class Notification(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="notifications")
    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=10)  # firing | resolved
    status = models.CharField(
        max_length=8, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "channel", "kind"], name="one_notification_per_transition"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.alert_id} via {self.channel_id}: {self.status}"
