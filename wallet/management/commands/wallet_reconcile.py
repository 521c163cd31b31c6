"""Reconcile the ledger and print the report as JSON; exit status 1 when it found
a problem (for cron, CI or an operator's shell)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from wallet.reconcile import wallet_reconcile


class Command(BaseCommand):
    help = "Check every ledger balance against its postings and every transaction's sum."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk", type=int, default=None, help="Rows read per query.")

    def handle(self, *args: Any, **options: Any) -> None:
        report = wallet_reconcile(chunk=options["chunk"])
        body = dataclasses.asdict(report) | {"ok": report.ok}
        self.stdout.write(json.dumps(body, default=str, indent=2))
        if not report.ok:
            raise CommandError("The ledger does not reconcile; see the report above.")
