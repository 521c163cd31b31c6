"""Import a sponsor's logo or background ahead of the show (docs/shake.md "Sponsor
assets"): `manage.py shake_asset_import <sponsor id> logo|background <url or file>`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shake.services.assets import asset_import
from wechat_core.errors import ServiceError


class Command(BaseCommand):
    help = "Store a sponsor's logo or background here, served by its hash."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("sponsor", type=int)
        parser.add_argument("role", choices=["logo", "background"])
        parser.add_argument("source", help="An http(s) URL or a file's path.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            asset = asset_import(
                sponsor_id=options["sponsor"], role=options["role"], source=options["source"]
            )
        except ServiceError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"{asset.sha256} {asset.size} bytes {asset.content_type}")
