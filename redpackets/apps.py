"""Group red packets, shake activities, the ledger and payouts (DESIGN.md §11)."""

from django.apps import AppConfig


class RedpacketsConfig(AppConfig):
    name = "redpackets"
    verbose_name = "Red packets"
    default_auto_field = "django.db.models.BigAutoField"
