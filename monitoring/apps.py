"""Metrics built into the framework, history, dashboards, alert rules and notifications
(DESIGN.md §7)."""

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Celery tasks are measured through Celery's signals in every process.
        import wechat_core.instrument.celery  # noqa: F401
