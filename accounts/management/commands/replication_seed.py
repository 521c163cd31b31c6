"""`manage.py replication_seed`: put what this data centre masters into the
replication log once, for peers that missed it (accounts.replication.replication_seed)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.replication import replication_seed
from wechat_core import datacenters


class Command(BaseCommand):
    help = (
        "Write the users homed here, their friendships, blocks and pending friend requests "
        "into the replication log (run once when data centres are switched on or a peer is "
        "added; idempotent at the peers)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not datacenters.enabled():
            raise CommandError("DATACENTERS is empty: there is no peer to seed.")
        counts = replication_seed()
        self.stdout.write(
            "seeded for the peers of "
            + datacenters.here()
            + ": "
            + ", ".join(f"{count} {kind}" for kind, count in counts.items())
        )
