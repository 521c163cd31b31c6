"""HTTP endpoints of the wallet: one view per use case, each parsing input, calling one
service or selector with the verified ticket, and shaping output. The provider's
notification endpoint is plain Django (XML, no ticket: its signature is the proof)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.ticketview import TicketMixin, TicketView
from wallet import paywire, selectors
from wallet.api import serializers as s
from wallet.services import topups, withdrawals
from wechat_core.api.request import client_ip


class WalletView(TicketView):
    @extend_schema(responses={200: s.WalletOutput}, tags=["wallet"])
    def get(self, request: Request) -> Response:
        ticket = self.ticket
        summary = selectors.wallet_summary(ticket=ticket, user_id=ticket.user_id)
        limits = {
            "topup_min": settings.WALLET_TOPUP_MIN_FEN,
            "topup_max": settings.WALLET_TOPUP_MAX_FEN,
            "topup_max_per_day": settings.WALLET_TOPUP_MAX_FEN_PER_DAY,
            "topup_used_today": summary.topup_used_today,
            "withdrawal_min": settings.WALLET_WITHDRAWAL_MIN_FEN,
            "withdrawal_max": settings.WALLET_WITHDRAWAL_MAX_FEN,
            "withdrawal_max_per_day": settings.WALLET_WITHDRAWAL_MAX_FEN_PER_DAY,
            "withdrawal_used_today": summary.withdrawal_used_today,
        }
        body = {
            "balance": summary.balance,
            "currency": "CNY",
            "payments_available": bool(settings.PAY_MCH_KEY),
            "limits": limits,
        }
        return Response(s.WalletOutput(body).data)


class MovementListView(TicketMixin, ListAPIView):  # type: ignore[type-arg]
    """The wallet's movements, newest first, with the reason of each."""

    serializer_class = s.MovementOutput

    @extend_schema(tags=["wallet"])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        ticket = self.ticket
        return selectors.wallet_movements(ticket=ticket, user_id=ticket.user_id)


class TopUpCreateView(TicketView):
    @extend_schema(
        request=s.OrderInput,
        responses={201: s.TopUpOutput, 200: s.TopUpOutput},
        tags=["wallet"],
        description="Start a top-up: open `pay_url` to pay. A retry with the same client_id "
        "answers 200 with the same top-up.",
    )
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.OrderInput, request.data)
        result = topups.topup_create(
            ticket=ticket,
            user_id=ticket.user_id,
            client_id=data["client_id"],
            amount=data["amount"],
            client_ip=client_ip(request),
        )
        code = status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED
        return Response(s.TopUpOutput(result.topup).data, status=code)


class TopUpDetailView(TicketView):
    @extend_schema(responses={200: s.TopUpOutput}, tags=["wallet"])
    def get(self, request: Request, topup_id: int) -> Response:
        ticket = self.ticket
        topup = selectors.topup_get(ticket=ticket, user_id=ticket.user_id, topup_id=topup_id)
        return Response(s.TopUpOutput(topup).data)


class WithdrawalCreateView(TicketView):
    @extend_schema(
        request=s.OrderInput,
        responses={201: s.WithdrawalOutput, 200: s.WithdrawalOutput},
        tags=["wallet"],
        description="Withdraw to your balance at the payment provider: the amount leaves the "
        "wallet at once and is paid out shortly. A retry with the same client_id answers 200.",
    )
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.OrderInput, request.data)
        result = withdrawals.withdrawal_create(
            ticket=ticket,
            user_id=ticket.user_id,
            client_id=data["client_id"],
            amount=data["amount"],
        )
        code = status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED
        return Response(s.WithdrawalOutput(result.withdrawal).data, status=code)


class WithdrawalDetailView(TicketView):
    @extend_schema(responses={200: s.WithdrawalOutput}, tags=["wallet"])
    def get(self, request: Request, withdrawal_id: int) -> Response:
        ticket = self.ticket
        withdrawal = selectors.withdrawal_get(
            ticket=ticket, user_id=ticket.user_id, withdrawal_id=withdrawal_id
        )
        return Response(s.WithdrawalOutput(withdrawal).data)


@csrf_exempt
@require_POST
def pay_notify(request: HttpRequest) -> HttpResponse:
    """The provider's payment notification (docs/wallet.md): always HTTP 200 with
    return_code SUCCESS (stop retrying) or FAIL (retry later)."""
    answer = topups.topup_notify(body=request.body)
    return HttpResponse(
        paywire.answer_xml(ok=answer.ok, message=answer.message),
        content_type="text/xml; charset=utf-8",
    )
