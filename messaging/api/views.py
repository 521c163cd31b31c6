"""HTTP endpoints of messaging: one view per use case, each parsing input, calling
one service or selector with the verified ticket, and shaping output. The same
operations as the websocket, for clients without one (docs/protocol.md)."""

from __future__ import annotations

from typing import Any, cast

from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.types import VerifiedTicket
from messaging import protocol, selectors
from messaging.api import serializers as s
from messaging.models import Conversation, Membership
from messaging.services import attachments, conversations, receipts, sending
from wechat_core.api.pagination import PageNumberPagination


def _ticket(request: Request) -> VerifiedTicket:
    return cast(VerifiedTicket, request.auth)


def _valid(serializer_class: Any, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return cast(dict[str, Any], serializer.validated_data)


def _detail(conversation: Conversation, membership: Membership, members: list[Membership]) -> Any:
    return s.ConversationDetailOutput(
        {
            "conversation": selectors.conversation_view_of(conversation, membership.user_id),
            "announcement": conversation.announcement,
            "owner": conversation.owner_id,
            "role": membership.role,
            "read_seq": membership.read_seq,
            "members": members,
        }
    ).data


class SendView(APIView):
    @extend_schema(
        request=s.SendInput,
        responses={201: s.AckOutput, 200: s.AckOutput},
        tags=["messaging"],
        description="Send a message. A retry with the same client_msg_id answers 200 "
        "with the original ack (`duplicate: true`).",
    )
    def post(self, request: Request) -> Response:
        ticket = _ticket(request)
        command = protocol.parse_send(request.data)
        ack = sending.message_send(
            ticket=ticket,
            user_id=ticket.user_id,
            conversation_id=command.conversation_id,
            client_msg_id=command.client_msg_id,
            content=command.content,
        )
        code = status.HTTP_200_OK if ack.duplicate else status.HTTP_201_CREATED
        return Response(protocol.ack_body(ack), status=code)


class RecallView(APIView):
    @extend_schema(request=s.RecallInput, responses={200: s.AckOutput}, tags=["messaging"])
    def post(self, request: Request) -> Response:
        ticket = _ticket(request)
        command = protocol.parse_recall(request.data)
        ack = sending.message_recall(
            ticket=ticket, user_id=ticket.user_id, message_id=command.message_id
        )
        return Response(protocol.ack_body(ack))


class ReadView(APIView):
    @extend_schema(request=s.ReadInput, responses={200: s.ReadOutput}, tags=["messaging"])
    def post(self, request: Request) -> Response:
        ticket = _ticket(request)
        command = protocol.parse_read(request.data)
        read_seq = sending.conversation_read(
            ticket=ticket,
            user_id=ticket.user_id,
            conversation_id=command.conversation_id,
            seq=command.seq,
        )
        return Response({"conversation": command.conversation_id, "read_seq": read_seq})


class ReceiptView(APIView):
    @extend_schema(
        request=s.ReceiptInput,
        responses={200: s.ReceiptOutput},
        tags=["messaging"],
        description="Report when messages from others were displayed (end-to-end delay).",
    )
    def post(self, request: Request) -> Response:
        ticket = _ticket(request)
        command = protocol.parse_receipt(request.data)
        counted = receipts.receipts_record(
            ticket=ticket, user_id=ticket.user_id, shown=command.shown
        )
        return Response({"counted": counted})


class ConversationListView(APIView):
    @extend_schema(responses={200: s.ConversationSummaryOutput(many=True)}, tags=["messaging"])
    def get(self, request: Request) -> Response:
        ticket = _ticket(request)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            selectors.conversation_list(ticket=ticket, user_id=ticket.user_id), request, view=self
        )
        memberships = page or []
        last = selectors.messages_by_id(
            [m_id for m in memberships if (m_id := getattr(m, "last_message_id", None))],
            ticket.user_id,
        )
        rows = [
            {
                "conversation": selectors.conversation_view_of(m.conversation, ticket.user_id),
                "role": m.role,
                "read_seq": m.read_seq,
                "unread": getattr(m, "unread", 0),
                "last_message": last.get(getattr(m, "last_message_id", None) or 0),
            }
            for m in memberships
        ]
        return paginator.get_paginated_response(s.ConversationSummaryOutput(rows, many=True).data)


class DirectView(APIView):
    @extend_schema(
        request=s.DirectInput, responses={200: s.ConversationDetailOutput}, tags=["messaging"]
    )
    def post(self, request: Request) -> Response:
        ticket = _ticket(request)
        data = _valid(s.DirectInput, request.data)
        conversation = conversations.direct_open(
            ticket=ticket, user_id=ticket.user_id, peer_id=data["user_id"]
        )
        detail = selectors.conversation_get(
            ticket=ticket, user_id=ticket.user_id, conversation_id=conversation.pk
        )
        return Response(_detail(*detail))


class ConversationDetailView(APIView):
    @extend_schema(responses={200: s.ConversationDetailOutput}, tags=["messaging"])
    def get(self, request: Request, conversation_id: int) -> Response:
        ticket = _ticket(request)
        detail = selectors.conversation_get(
            ticket=ticket, user_id=ticket.user_id, conversation_id=conversation_id
        )
        return Response(_detail(*detail))


class HistoryView(APIView):
    @extend_schema(
        parameters=[s.HistoryInput], responses={200: s.HistoryOutput}, tags=["messaging"]
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        ticket = _ticket(request)
        data = _valid(s.HistoryInput, request.query_params)
        messages = selectors.message_history(
            ticket=ticket,
            user_id=ticket.user_id,
            conversation_id=conversation_id,
            before=data.get("before"),
            limit=data["limit"],
        )
        return Response({"messages": messages})


class GroupCreateView(APIView):
    @extend_schema(
        request=s.GroupCreateInput, responses={201: s.ConversationDetailOutput}, tags=["groups"]
    )
    def post(self, request: Request) -> Response:
        ticket = _ticket(request)
        data = _valid(s.GroupCreateInput, request.data)
        group = conversations.group_create(
            ticket=ticket, user_id=ticket.user_id, name=data["name"], member_ids=data["members"]
        )
        detail = selectors.conversation_get(
            ticket=ticket, user_id=ticket.user_id, conversation_id=group.pk
        )
        return Response(_detail(*detail), status=status.HTTP_201_CREATED)


class GroupDetailView(APIView):
    @extend_schema(
        request=s.GroupUpdateInput, responses={200: s.ConversationDetailOutput}, tags=["groups"]
    )
    def patch(self, request: Request, conversation_id: int) -> Response:
        ticket = _ticket(request)
        data = _valid(s.GroupUpdateInput, request.data)
        conversations.group_update(
            ticket=ticket, user_id=ticket.user_id, conversation_id=conversation_id, **data
        )
        detail = selectors.conversation_get(
            ticket=ticket, user_id=ticket.user_id, conversation_id=conversation_id
        )
        return Response(_detail(*detail))


class GroupMembersView(APIView):
    @extend_schema(request=s.InviteInput, responses={200: s.MessageOutput}, tags=["groups"])
    def post(self, request: Request, conversation_id: int) -> Response:
        ticket = _ticket(request)
        data = _valid(s.InviteInput, request.data)
        notice = conversations.group_invite(
            ticket=ticket,
            user_id=ticket.user_id,
            conversation_id=conversation_id,
            member_ids=data["user_ids"],
        )
        return Response(selectors.messages_by_id([notice.pk])[notice.pk])


class GroupMemberView(APIView):
    @extend_schema(request=None, responses={204: None}, tags=["groups"])
    def delete(self, request: Request, conversation_id: int, user_id: int) -> Response:
        ticket = _ticket(request)
        conversations.group_remove(
            ticket=ticket,
            user_id=ticket.user_id,
            conversation_id=conversation_id,
            member_id=user_id,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class GroupLeaveView(APIView):
    @extend_schema(request=None, responses={204: None}, tags=["groups"])
    def post(self, request: Request, conversation_id: int) -> Response:
        ticket = _ticket(request)
        conversations.group_leave(
            ticket=ticket, user_id=ticket.user_id, conversation_id=conversation_id
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class GroupAdminView(APIView):
    def _set(self, request: Request, conversation_id: int, user_id: int, admin: bool) -> Response:
        ticket = _ticket(request)
        conversations.group_set_admin(
            ticket=ticket,
            user_id=ticket.user_id,
            conversation_id=conversation_id,
            member_id=user_id,
            admin=admin,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={204: None}, tags=["groups"])
    def put(self, request: Request, conversation_id: int, user_id: int) -> Response:
        return self._set(request, conversation_id, user_id, True)

    @extend_schema(request=None, responses={204: None}, tags=["groups"])
    def delete(self, request: Request, conversation_id: int, user_id: int) -> Response:
        return self._set(request, conversation_id, user_id, False)


class UploadView(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(request=s.UploadInput, responses={201: s.AttachmentOutput}, tags=["messaging"])
    def post(self, request: Request) -> Response:
        ticket = _ticket(request)
        data = _valid(s.UploadInput, request.data)
        attachment = attachments.attachment_upload(
            ticket=ticket, user_id=ticket.user_id, kind=data["kind"], upload=data["file"]
        )
        return Response(s.AttachmentOutput(attachment).data, status=status.HTTP_201_CREATED)


class AttachmentView(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): bytes}, tags=["messaging"])
    def get(self, request: Request, attachment_id: Any) -> FileResponse:
        ticket = _ticket(request)
        attachment = selectors.attachment_access(
            ticket=ticket, user_id=ticket.user_id, attachment_id=str(attachment_id)
        )
        response = FileResponse(
            attachment.file.open("rb"),
            content_type=attachment.content_type,
            as_attachment=attachment.kind == "file",
            filename=attachment.name,
        )
        response["Cache-Control"] = "private, max-age=86400"
        return response
