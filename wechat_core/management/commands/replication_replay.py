"""`manage.py replication_replay`: apply the peers' replication entries here."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from wechat_core.management.commands._replication import run_until_signalled
from wechat_core.replication.broker import replay_run


class Command(BaseCommand):
    help = "Apply the peer data centres' replication entries, in order per origin (issue 17)."

    def handle(self, *args: Any, **options: Any) -> None:
        run_until_signalled(replay_run, self.stdout.write, "replication replay")
