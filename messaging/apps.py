"""The SYNC protocol: per-user sync logs and sequences, chats and groups, the websocket consumer,
delivery and replay tasks (DESIGN.md §4).
"""

from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Declares the delivery-delay metric in every process (web, workers, beat),
        # so /metrics, the history and the alert rules know it wherever they run.
        import messaging.services.receipts  # noqa: F401
