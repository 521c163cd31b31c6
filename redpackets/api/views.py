"""HTTP endpoints of red packets: one view per use case, each parsing input,
calling one service or selector with the verified ticket, and shaping output."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.ticketview import TicketView
from redpackets import selectors, wire
from redpackets.api import serializers as s
from redpackets.services.grabbing import packet_grab
from redpackets.services.sending import packet_send


class SendView(TicketView):
    @extend_schema(
        request=s.RedPacketSendInput,
        responses={201: s.RedPacketSentOutput, 200: s.RedPacketSentOutput},
        tags=["redpackets"],
        description="Send a red packet: the amount leaves your wallet into the packet's "
        "escrow, and a `redpacket` message appears in the chat, in one transaction. A retry "
        "with the same client_id answers 200 with the same packet.",
    )
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        sent = packet_send(
            ticket=ticket,
            user_id=ticket.user_id,
            request=wire.request_from(self.valid(s.RedPacketSendInput, request.data)),
        )
        code = status.HTTP_200_OK if sent.duplicate else status.HTTP_201_CREATED
        return Response(s.RedPacketSentOutput(wire.sent_json(sent)).data, status=code)


class GrabView(TicketView):
    @extend_schema(
        request=None,
        responses={200: s.RedPacketGrabOutput},
        tags=["redpackets"],
        description="Open (grab) a share. Losing is not an error: outcome `finished` or "
        "`expired`. Your amount is final at once; `credit` says whether it has reached "
        "your wallet yet.",
    )
    def post(self, request: Request, packet_id: int) -> Response:
        ticket = self.ticket
        result = packet_grab(ticket=ticket, user_id=ticket.user_id, packet_id=packet_id)
        return Response(s.RedPacketGrabOutput(wire.grab_json(result)).data)


class DetailView(TicketView):
    @extend_schema(responses={200: s.RedPacketDetailOutput}, tags=["redpackets"])
    def get(self, request: Request, packet_id: int) -> Response:
        ticket = self.ticket
        detail = selectors.packet_detail(ticket=ticket, user_id=ticket.user_id, packet_id=packet_id)
        packet = detail.packet
        body = {
            "packet": packet.pk,
            "message": packet.message_id,
            "conversation": packet.conversation_id,
            "sender": packet.sender_id,
            "sender_nickname": detail.sender_nickname,
            "kind": packet.kind,
            "total_amount": packet.total_amount,
            "shares": packet.shares,
            "opened_count": len(detail.grabs),
            "opened_amount": sum(line.amount for line in detail.grabs),
            "refunded_amount": packet.refunded_amount,
            "greeting": packet.greeting,
            "cover": packet.cover,
            "state": detail.state,
            "created_at": packet.created_at,
            "expires_at": packet.expires_at,
            "grabs": [
                {
                    "user": line.user_id,
                    "nickname": line.nickname,
                    "amount": line.amount,
                    "opened_at": line.created_at,
                    "credit": line.credit,
                }
                for line in detail.grabs
            ],
            "luckiest": detail.luckiest,
            "my_amount": detail.mine.amount if detail.mine else None,
            "my_credit": detail.mine.credit_state if detail.mine else None,
        }
        return Response(s.RedPacketDetailOutput(body).data)


class CoverListView(TicketView):
    @extend_schema(responses={200: s.RedPacketCoverListOutput(many=True)}, tags=["redpackets"])
    def get(self, request: Request) -> Response:
        covers = [{"id": cover_id, "title": title} for cover_id, title in selectors.covers_list()]
        return Response(s.RedPacketCoverListOutput(covers, many=True).data)
