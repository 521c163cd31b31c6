"""Features, rollout rules, in-process evaluation and audit (DESIGN.md §6)."""

from django.apps import AppConfig


class GrayreleaseConfig(AppConfig):
    name = "grayrelease"
    verbose_name = "Gray release"
    default_auto_field = "django.db.models.BigAutoField"
