"""Features, rollout rules, in-process evaluation and audit (DESIGN.md §6)."""

from django.apps import AppConfig


class GrayreleaseConfig(AppConfig):
    name = "grayrelease"
    verbose_name = "Gray release"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.clientflags import flags_provider_register
        from grayrelease.selectors import device_flags, login_flags

        # The login answer (accounts) and the websocket hello (messaging) carry
        # the flags without importing this app.
        flags_provider_register(at_login=login_flags, for_ticket=device_flags)
