"""Monitoring's data: metric history, alert rules and their lifecycle, notification
channels and deliveries, silences, traffic-guard blocks, and DR drill reports."""

from monitoring.models.alerts import (
    Aggregation,
    Alert,
    AlertEvent,
    AlertRule,
    AlertState,
    Comparison,
    Notification,
    NotificationChannel,
    NotificationStatus,
    Severity,
    Silence,
)
from monitoring.models.drills import DrDrill, DrillOutcome
from monitoring.models.history import MetricPoint, MetricSeries
from monitoring.models.trafficguard import GuardBlock

__all__ = [
    "Aggregation",
    "Alert",
    "AlertEvent",
    "AlertRule",
    "AlertState",
    "Comparison",
    "DrDrill",
    "DrillOutcome",
    "GuardBlock",
    "MetricPoint",
    "MetricSeries",
    "Notification",
    "NotificationChannel",
    "NotificationStatus",
    "Severity",
    "Silence",
]
