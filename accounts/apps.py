from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and contacts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # How this app's replication entries are applied in the other data centres.
        from accounts.replication import replay_handlers_register

        replay_handlers_register()
