"""`manage.py replication_relay`: ship this data centre's outbox to its peers' queues."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from wechat_core.management.commands._replication import run_until_signalled
from wechat_core.replication.broker import relay_run


class Command(BaseCommand):
    help = "Ship the replication outbox to the peer data centres' quorum queues (issue 17)."

    def handle(self, *args: Any, **options: Any) -> None:
        run_until_signalled(relay_run, self.stdout.write, "replication relay")
