"""DRF authentication by ticket (`Authorization: Ticket <ticket>`), and the permission
that requires one. Authentication costs no query while the ticket is cached.

Public: every app's HTTP API authenticates through this module (the DRF settings
name it), and the long-poll and instrumentation read tickets with
`ticket_from_header`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.functional import SimpleLazyObject
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.exceptions import TicketInvalid
from accounts.models import User
from accounts.services.devices import device_touch
from accounts.tickets import ticket_verify
from accounts.types import VerifiedTicket
from wechat_core.api.request import client_ip

if TYPE_CHECKING:  # rest_framework.views imports this module through the settings
    from rest_framework.views import APIView

SCHEMES = ("ticket", "bearer")


def ticket_from_header(header: bytes) -> VerifiedTicket | None:
    """The verified ticket of an Authorization header; None when it names another scheme.
    Raises the ticket errors (invalid, expired, revoked)."""
    if not header:
        return None
    try:
        scheme, _, token = header.decode("ascii").partition(" ")
    except UnicodeDecodeError as error:
        raise TicketInvalid() from error
    if scheme.lower() not in SCHEMES:
        return None
    return ticket_verify(token=token.strip())


class TicketAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, VerifiedTicket] | None:
        ticket = ticket_from_header(get_authorization_header(request))
        if ticket is None:
            return None
        device_touch(ticket=ticket, ip=client_ip(request))
        user_id = ticket.user_id
        return SimpleLazyObject(lambda: User.objects.get(pk=user_id)), ticket

    def authenticate_header(self, request: Request) -> str:
        return 'Ticket realm="api"'


class HasTicket(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.auth, VerifiedTicket)


class TicketAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "accounts.authentication.TicketAuthentication"
    name = "ticket"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Ticket <ticket>`, the ticket returned by login or registration.",
        }
