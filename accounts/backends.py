"""Django authentication backend for the admin site: phone or e-mail + password,
through the same credential check and brute-force protection as the API."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from accounts.exceptions import AccountDisabled, InvalidCredentials
from accounts.models import User
from accounts.services.login import credentials_check
from wechat_core.api.request import client_ip


class AccountBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if not username or password is None:
            return None
        try:
            return credentials_check(
                identifier=username,
                password=password,
                ip=client_ip(request) if request is not None else None,
            )
        except (InvalidCredentials, AccountDisabled):
            return None
