"""Errors raised by services and selectors; the API and websocket layers render them.

Each error carries a stable machine-readable `code`, a human `message`, an HTTP
`status` and optional `details`. Views never build error bodies themselves.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils.translation import gettext, gettext_noop


class ServiceError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid"
    default_message: ClassVar[str] = gettext_noop("The request is invalid.")

    def __init__(
        self, message: str | None = None, *, details: dict[str, Any] | None = None
    ) -> None:
        # Default messages are marked with gettext_noop and translated here, into the
        # request's language (LocaleMiddleware: Accept-Language); codes never change.
        self.message = message or gettext(self.default_message)
        self.details: dict[str, Any] = details or {}
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        return {}


class InvalidInput(ServiceError):
    status = 400
    code = "invalid"


class NotAuthenticated(ServiceError):
    status = 401
    code = "not_authenticated"
    default_message = gettext_noop("A ticket is required: send 'Authorization: Ticket <ticket>'.")

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Ticket realm="api"'}


class PermissionRefused(ServiceError):
    status = 403
    code = "forbidden"
    default_message = gettext_noop("You may not do this.")


class NotFound(ServiceError):
    status = 404
    code = "not_found"
    default_message = gettext_noop("Not found.")


class Conflict(ServiceError):
    status = 409
    code = "conflict"
    default_message = gettext_noop("The request conflicts with the current state.")


class Gone(ServiceError):
    status = 410
    code = "gone"
    default_message = gettext_noop("This no longer exists.")


class PayloadTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"
    default_message = gettext_noop("The request body is too large.")


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"
    default_message = gettext_noop("Too many requests.")

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(message, details={**(details or {}), "retry_after": self.retry_after})

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
