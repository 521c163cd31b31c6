"""Why does a user (not) get a feature? Evaluates it here, as every process does.

    python manage.py flagcheck web.chat_search --user 42

Prints the decision and its reason for the user outside any device (what a
Celery task acting for them sees) and on each device they are signed in on.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from grayrelease.evaluation import evaluate
from grayrelease.selectors import signed_in_devices_of, subject_for_user
from wechat_core.errors import ServiceError


class Command(BaseCommand):
    help = "Evaluate a feature for a user, with the reason, on each of their devices."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="The feature's key, e.g. web.chat_search.")
        parser.add_argument("--user", type=int, required=True, help="The user's id.")

    def handle(self, *args: Any, **options: Any) -> None:
        key, user_id = options["key"], options["user"]
        try:
            subjects = [subject_for_user(user_id=user_id), *signed_in_devices_of(user_id=user_id)]
        except ServiceError as error:
            raise CommandError(error.message) from error
        for subject in subjects:
            decision = evaluate(key=key, subject=subject)
            where = (
                f"device {subject.device_id} ({subject.platform} {subject.client_version})"
                if subject.device_id is not None
                else "outside any device"
            )
            self.stdout.write(
                f"{key} for user {user_id}, {where}: {decision.variant} ({decision.reason})"
            )
