"""Login forms of the server-rendered pages (the admin, the developer console).

They check credentials through accounts.backends, which shares the API's
brute-force protection; a locked account or address is a form error that
says how long to wait (accounts.loginpages answers it with 429 and Retry-After).
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from accounts.exceptions import LoginLocked


class LockAwareLoginMixin:
    """Turns the login lock into a form error; the lock stays readable as `locked`."""

    locked: LoginLocked | None = None

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()  # type: ignore[misc, no-any-return]
        except LoginLocked as locked:
            self.locked = locked
            raise ValidationError(
                f"{locked.message} Try again in {locked.retry_after} seconds.", code="locked"
            ) from locked


class LoginForm(LockAwareLoginMixin, AuthenticationForm):
    """Any active account: the developer console."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "E-mail or phone"


class OperatorLoginForm(LockAwareLoginMixin, AdminAuthenticationForm):
    """Staff only: the admin site."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Phone or e-mail"
