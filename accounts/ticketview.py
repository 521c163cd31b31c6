"""The base of the HTTP views that act for a ticket holder, in every app: the
request's verified ticket (set by the ticket authentication) and input
validation (wechat_core.api.views.ServiceMixin), instead of a copy per app."""

from __future__ import annotations

from typing import Any, cast

from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.types import VerifiedTicket
from wechat_core.api.views import ServiceMixin


class TicketMixin(ServiceMixin):
    request: Any  # the view's DRF Request (Django's View declares an HttpRequest)

    @property
    def ticket(self) -> VerifiedTicket:
        """The caller's verified ticket (views that allow anyone have none)."""
        request: Request = self.request
        return cast(VerifiedTicket, request.auth)


# No docstring: drf-spectacular would describe every operation with it.
class TicketView(TicketMixin, APIView):  # an APIView acting for the ticket's user
    pass
