"""Default alert rules and notification channels (edit them in the admin)."""

from django.db import migrations

RULES = [
    {
        "name": "HTTP error rate",
        "description": "More than 5% of HTTP requests answered 5xx over 5 minutes.",
        "metric": "http_requests_total",
        "aggregation": "ratio",
        "numerator_labels": {"outcome": "5xx"},
        "window_seconds": 300,
        "comparison": "above",
        "threshold": 0.05,
        "min_volume": 20,
        "for_seconds": 120,
        "severity": "critical",
    },
    {
        "name": "HTTP p99 latency",
        "description": "The 99th percentile of HTTP request time above 1 s over 5 minutes.",
        "metric": "http_request_duration_seconds",
        "aggregation": "p99",
        "window_seconds": 300,
        "comparison": "above",
        "threshold": 1.0,
        "min_volume": 50,
        "for_seconds": 300,
        "severity": "warning",
    },
    {
        "name": "Celery queue depth",
        "description": "More than 1,000 tasks waiting in one of the Celery queues.",
        "metric": "celery_queue_length",
        "aggregation": "max",
        "window_seconds": 60,
        "comparison": "above",
        "threshold": 1000,
        "for_seconds": 300,
        "severity": "warning",
    },
    {
        "name": "Message delay",
        "description": "More than 5% of messages took over 5 s from send to display (receipts).",
        "metric": "messaging_delivery_delay_seconds",
        "aggregation": "share_above",
        "bucket_bound": 5.0,
        "window_seconds": 300,
        "comparison": "above",
        "threshold": 0.05,
        "min_volume": 20,
        "for_seconds": 180,
        "severity": "critical",
    },
    {
        "name": "Messages sent: drop against last week",
        "description": "Messages per second below half of the same minutes last week.",
        "metric": "messaging_messages_sent_total",
        "aggregation": "rate",
        "window_seconds": 600,
        "comparison": "below_history",
        "history_offset": 7 * 86400,
        "threshold": 0.5,
        "min_volume": 600,
        "for_seconds": 600,
        "severity": "warning",
    },
]
CHANNELS = [
    {"name": "Operators' chats", "kind": "chat", "min_severity": "warning"},
    {"name": "Operators' e-mail", "kind": "email", "min_severity": "critical"},
]


def create(apps, schema_editor):
    AlertRule = apps.get_model("monitoring", "AlertRule")
    NotificationChannel = apps.get_model("monitoring", "NotificationChannel")
    for rule in RULES:
        AlertRule.objects.get_or_create(name=rule["name"], defaults=rule)
    for channel in CHANNELS:
        NotificationChannel.objects.get_or_create(name=channel["name"], defaults=channel)


def remove(apps, schema_editor):
    apps.get_model("monitoring", "AlertRule").objects.filter(
        name__in=[rule["name"] for rule in RULES]
    ).delete()
    apps.get_model("monitoring", "NotificationChannel").objects.filter(
        name__in=[channel["name"] for channel in CHANNELS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0001_initial")]
    operations = [migrations.RunPython(create, remove)]
