"""Monitoring's data: metric history, alert rules and their lifecycle, notification
channels and deliveries, silences, and traffic-guard blocks."""

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
from monitoring.models.guard import GuardBlock
from monitoring.models.history import MetricPoint, MetricSeries

__all__ = [
    "Aggregation",
    "Alert",
    "AlertEvent",
    "AlertRule",
    "AlertState",
    "Comparison",
    "GuardBlock",
    "MetricPoint",
    "MetricSeries",
    "Notification",
    "NotificationChannel",
    "NotificationStatus",
    "Severity",
    "Silence",
]
