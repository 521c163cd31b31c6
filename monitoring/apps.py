"""Metrics built into the framework, history, dashboards, alert rules and notifications
(DESIGN.md §7)."""

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Celery tasks are measured through Celery's signals in every process; the
        # other hooks are imported so every metric is declared before it is first
        # moved (the admin's rule form and /metrics list them all).
        import monitoring.instrument.celery
        import monitoring.instrument.http
        import monitoring.instrument.websocket
        import monitoring.services.queues  # noqa: F401
        import wechat_core.http  # noqa: F401
