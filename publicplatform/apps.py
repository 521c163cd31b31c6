"""Official accounts, webhooks to developer servers and the developer REST API (DESIGN.md §10)."""

from django.apps import AppConfig


class PublicplatformConfig(AppConfig):
    name = "publicplatform"
    verbose_name = "Official accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from messaging.models import ConversationKind
        from messaging.services.policies import kind_policy_register
        from publicplatform.services.followers import OfficialConversationPolicy

        kind_policy_register(kind=ConversationKind.OFFICIAL, policy=OfficialConversationPolicy())
