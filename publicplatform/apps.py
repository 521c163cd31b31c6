"""Official accounts, webhooks to developers' servers and the developer REST API (DESIGN.md §10)."""

from django.apps import AppConfig


class PublicplatformConfig(AppConfig):
    name = "publicplatform"
    verbose_name = "Official accounts"
    default_auto_field = "django.db.models.BigAutoField"
