"""Alert rules of replication between data centres (issue 17; docs/deploy.md)."""

from django.db import migrations

RULES = [
    {
        "name": "Replication lag",
        "description": "Entries from a peer data centre applied here more than 5 s after "
        "they were written there.",
        "metric": "replication_lag_seconds",
        "aggregation": "max",
        "window_seconds": 60,
        "comparison": "above",
        "threshold": 5.0,
        "for_seconds": 120,
        "severity": "critical",
    },
    {
        "name": "Replication outbox backlog",
        "description": "More than 10,000 replication entries not yet shipped to the peers "
        "(relay down, or the queue unreachable).",
        "metric": "replication_outbox_backlog",
        "aggregation": "max",
        "window_seconds": 60,
        "comparison": "above",
        "threshold": 10000,
        "for_seconds": 60,
        "severity": "critical",
    },
    {
        "name": "Replication replay errors",
        "description": "Replication entries from a peer failed to apply here in the last hour.",
        "metric": "replication_replay_errors_last_hour",
        "aggregation": "max",
        "window_seconds": 60,
        "comparison": "above",
        "threshold": 0,
        "for_seconds": 0,
        "severity": "warning",
    },
]


def create(apps, schema_editor):
    AlertRule = apps.get_model("monitoring", "AlertRule")
    for rule in RULES:
        AlertRule.objects.get_or_create(name=rule["name"], defaults=rule)


def remove(apps, schema_editor):
    apps.get_model("monitoring", "AlertRule").objects.filter(
        name__in=[rule["name"] for rule in RULES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0004_dr_drills")]

    operations = [migrations.RunPython(create, remove)]
