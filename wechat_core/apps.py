from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_local_topology(sender: AppConfig, **kwargs: Any) -> None:
    from wechat_core.services import topology_ensure_local

    topology_ensure_local()


def _partition_sequences(sender: AppConfig, **kwargs: Any) -> None:
    from wechat_core.datacenters import sequences_partition

    sequences_partition()


class WechatCoreConfig(AppConfig):
    name = "wechat_core"
    verbose_name = "Topology and framework"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every deployment has the data centre and campus it runs in (settings).
        post_migrate.connect(_ensure_local_topology, sender=self)
        # Several data centres: this one's ids start at its own block (datacenters.py).
        post_migrate.connect(_partition_sequences, sender=self)
        import wechat_core.admission.celery  # noqa: F401  (deadlines: publish and worker signals)
