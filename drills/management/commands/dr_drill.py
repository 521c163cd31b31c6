"""Run a DR drill now (drills/services.py; the beat runs one daily):

    manage.py dr_drill [--campus sh-b] [--block-seconds 180]

Blocks one campus while synthetic clients chat, aborts (unblocking at once) when
their failures rise, prints the report as JSON, and exits 1 when the drill
failed or aborted (2 when it was skipped)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandParser

from drills.services import drill_run
from monitoring.models import DrillOutcome


class Command(BaseCommand):
    help = "Block one campus for a few minutes while synthetic clients chat; report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--campus", help="campus code (default: the one drilled least lately)")
        parser.add_argument(
            "--block-seconds", type=float, help="how long to block (default DR_DRILL_BLOCK_SECONDS)"
        )

    def handle(self, *args: object, **options: object) -> None:
        campus = options.get("campus")
        block = options.get("block_seconds")
        drill = drill_run(
            campus=str(campus) if campus else None,
            trigger="command",
            block_seconds=float(block) if isinstance(block, int | float) else None,
        )
        report = {
            "drill": drill.pk,
            "campus": drill.campus,
            "outcome": drill.outcome,
            "before": {"sent": drill.before_sent, "failed": drill.before_failed},
            "during": {"sent": drill.during_sent, "failed": drill.during_failed},
            "moved_clients": drill.moved_clients,
            "reconnect_max_ms": drill.reconnect_max_ms,
            "explanation": drill.explanation,
        }
        self.stdout.write(json.dumps(report, indent=2))
        if drill.outcome in (DrillOutcome.FAILED, DrillOutcome.ABORTED):
            raise SystemExit(1)
        if drill.outcome == DrillOutcome.SKIPPED:
            raise SystemExit(2)
