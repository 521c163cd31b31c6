"""The SYNC protocol: per-user sync logs and sequences, chats and groups, the websocket consumer,
delivery and replay tasks (DESIGN.md §4).
"""

from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"
    default_auto_field = "django.db.models.BigAutoField"
