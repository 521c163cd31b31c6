"""The SYNC protocol: per-user sync logs and sequences, chats and groups, the websocket consumer,
delivery and replay tasks (DESIGN.md §4).
"""

from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The command table registers its frames' business priorities with admission
        # control (wechat_core.admission.priorities) as it is imported: at start-up,
        # not at the first websocket, so every process refuses frames by the table.
        # receipts declares the delivery-delay metric in every process (web, workers,
        # beat), so /metrics, the history and the alert rules know it wherever they run.
        import messaging.commands
        import messaging.services.receipts  # noqa: F401
        from messaging.services.notices import system_message_send
        from monitoring.services.notify import chat_sender_register

        # Monitoring's chat channel writes through messaging, which sits above it.
        chat_sender_register(system_message_send)
        # How conversation events from other data centres are applied here (issue 17).
        from messaging.replication import replay_handlers_register

        replay_handlers_register()
