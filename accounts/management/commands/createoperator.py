"""Create an operator (staff account in the Operators group), or promote an existing user.

The password comes from the environment variable named by --password-env
(default OPERATOR_PASSWORD) or, on a terminal, from a prompt; never from argv,
where it would land in shell history and process listings.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from accounts.services.operators import operator_grant
from accounts.services.registration import user_create
from wechat_core.errors import ServiceError


class Command(BaseCommand):
    help = "Create an operator account, or promote an existing user to operator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", help="The operator's e-mail (login).")
        parser.add_argument("--phone", help="The operator's phone number (login).")
        parser.add_argument("--nickname", default="Operator")
        parser.add_argument("--superuser", action="store_true", help="Grant every permission.")
        parser.add_argument("--password-env", default="OPERATOR_PASSWORD")
        parser.add_argument("--noinput", action="store_true", help="Never prompt.")

    def handle(self, *args: Any, **options: Any) -> None:
        email, phone = options["email"], options["phone"]
        if not email and not phone:
            raise CommandError("Give --email or --phone.")
        existing = User.objects.filter(email=email.lower()).first() if email else None
        if existing is None and phone:
            existing = User.objects.filter(phone=phone).first()
        if existing is not None:
            operator_grant(user=existing, superuser=options["superuser"])
            self.stdout.write(f"{existing} is an operator.")
            return
        password = self._password(options)
        try:
            user = user_create(
                phone=phone, email=email, password=password, nickname=options["nickname"]
            )
        except ServiceError as error:
            raise CommandError(f"{error.message} {error.details or ''}".strip()) from error
        operator_grant(user=user, superuser=options["superuser"])
        self.stdout.write(self.style.SUCCESS(f"Created operator {user}."))

    def _password(self, options: dict[str, Any]) -> str:
        password = os.environ.get(options["password_env"])
        if password:
            return password
        if options["noinput"]:
            raise CommandError(f"Set {options['password_env']} or run without --noinput.")
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The passwords differ.")
        return first
