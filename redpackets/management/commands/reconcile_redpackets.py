"""manage.py reconcile_redpackets: the daily red-packet reconciliation, now."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from redpackets.services.reconcile import redpackets_reconcile


class Command(BaseCommand):
    help = (
        "Reconcile every red packet with the ledger (escrows, grabs, credits, refunds) and "
        "the whole ledger; redo missing credits and overdue refunds; exit 1 if problems "
        "remain (they also raise the 'Red packet reconciliation' alert)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = redpackets_reconcile()
        summary = {
            "report": report.pk,
            "packets_checked": report.packets_checked,
            "grabs_checked": report.grabs_checked,
            "problems_found": report.problems_found,
            "repaired": report.repaired,
            "unresolved": report.unresolved,
            "ledger_ok": report.ledger_ok,
            "problems": report.problems,
        }
        self.stdout.write(json.dumps(summary, ensure_ascii=False, indent=2))
        if report.unresolved:
            raise CommandError(f"{report.unresolved} problem(s) remain (report {report.pk}).")
