"""HTTP endpoints of messaging: one view per use case, each parsing input, calling
one service or selector with the verified ticket, and shaping output. The same
operations as the websocket, for clients without one (docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.ticketview import TicketView
from messaging import selectors
from messaging.api import serializers as s
from messaging.commands import Context, command_execute
from messaging.models import Conversation, Membership
from messaging.services import attachments, conversations, hiding, linkstats
from messaging.services.attachments import IMAGE_TYPES
from wechat_core.api.pagination import PageNumberPagination
from wechat_core.api.schema import links

# What a client does next with an answer's ids (OpenAPI links).
SEND_HERE = {
    "Send": {
        "operationId": "messaging_send_create",
        "requestBody": {"conversation": "$response.body#/conversation/id"},
        "description": "Send a message to this conversation.",
    }
}
AFTER_SEND = {
    "Recall": {
        "operationId": "messaging_recall_create",
        "requestBody": {"message": "$response.body#/id"},
        "description": "Recall the message.",
    },
    "Read": {
        "operationId": "messaging_read_create",
        "requestBody": {
            "conversation": "$response.body#/conversation",
            "seq": "$response.body#/seq",
        },
        "description": "Mark the conversation read up to the message.",
    },
    "History": {
        "operationId": "messaging_conversations_messages_retrieve",
        "parameters": {"conversation_id": "$response.body#/conversation"},
        "description": "Read the conversation's history.",
    },
}


def _detail(conversation: Conversation, membership: Membership, members: list[Membership]) -> Any:
    return s.ConversationDetailOutput(
        {
            "conversation": selectors.conversation_view_of(conversation, membership.user_id),
            "announcement": conversation.announcement,
            "owner": conversation.owner_id,
            "role": membership.role,
            "read_seq": membership.read_seq,
            "muted": membership.muted,
            "pinned": membership.pinned_at is not None,
            "members": members,
        }
    ).data


class CommandView(TicketView):
    def command(self, name: str) -> Response:
        """Run a sync-protocol command over HTTP: the websocket's parser, handler and
        errors (messaging.commands), the answer as the body."""
        answer = command_execute(name, self.request.data, Context(self.ticket))
        code = status.HTTP_201_CREATED if answer.created else status.HTTP_200_OK
        return Response(answer.body, status=code)


class SendView(CommandView):
    @extend_schema(
        request=s.SendInput,
        responses={201: s.AckOutput, 200: s.AckOutput},
        extensions=links({201: AFTER_SEND, 200: AFTER_SEND}),
        tags=["messaging"],
        description="Send a message. A retry with the same client_msg_id answers 200 "
        "with the original ack (`duplicate: true`).",
    )
    def post(self, request: Request) -> Response:
        return self.command("send")


class RecallView(CommandView):
    @extend_schema(request=s.RecallInput, responses={200: s.AckOutput}, tags=["messaging"])
    def post(self, request: Request) -> Response:
        return self.command("recall")


class HideView(TicketView):
    @extend_schema(request=s.HideInput, responses={200: s.HideOutput}, tags=["messaging"])
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.HideInput, request.data)
        message = hiding.message_hide(
            ticket=ticket, user_id=ticket.user_id, message_id=data["message"]
        )
        body = {"message": message.pk, "conversation": message.conversation_id, "hidden": True}
        return Response(s.HideOutput(body).data)


class ReadView(CommandView):
    @extend_schema(request=s.ReadInput, responses={200: s.ReadOutput}, tags=["messaging"])
    def post(self, request: Request) -> Response:
        return self.command("read")


class ReceiptView(CommandView):
    @extend_schema(
        request=s.ReceiptInput,
        responses={200: s.ReceiptOutput},
        tags=["messaging"],
        description="Report when messages from others were displayed (end-to-end delay).",
    )
    def post(self, request: Request) -> Response:
        return self.command("receipt")


class LinkStatsView(TicketView):
    @extend_schema(
        request=s.LinkStatsInput,
        responses={200: s.LinkStatsOutput},
        tags=["messaging"],
        description="Report how the client's link attempts went (transport, connected or "
        "not, time to connect) and the round trips it measured: monitoring metrics "
        "(client_link_*), the clients' view of the network.",
    )
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.LinkStatsInput, request.data)
        reports = [
            linkstats.LinkReport(
                transport=r["transport"],
                ok=r["ok"],
                connect_ms=r.get("connect_ms"),
                rtt_ms=tuple(r.get("rtt_ms") or ()),
            )
            for r in data["reports"]
        ]
        counted = linkstats.link_stats_record(
            ticket=ticket, user_id=ticket.user_id, reports=reports
        )
        return Response({"counted": counted})


class ConversationListView(TicketView):
    pagination_class = PageNumberPagination  # also tells the schema the list is paginated

    @extend_schema(responses={200: s.ConversationSummaryOutput(many=True)}, tags=["messaging"])
    def get(self, request: Request) -> Response:
        ticket = self.ticket
        paginator = self.pagination_class()
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
                "muted": m.muted,
                "pinned": m.pinned_at is not None,
            }
            for m in memberships
        ]
        return paginator.get_paginated_response(s.ConversationSummaryOutput(rows, many=True).data)


class DirectView(TicketView):
    @extend_schema(
        request=s.DirectInput,
        responses={200: s.ConversationDetailOutput},
        extensions=links({200: SEND_HERE}),
        tags=["messaging"],
    )
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.DirectInput, request.data)
        conversation = conversations.direct_open(
            ticket=ticket, user_id=ticket.user_id, peer_id=data["user_id"]
        )
        detail = selectors.conversation_get(
            ticket=ticket, user_id=ticket.user_id, conversation_id=conversation.pk
        )
        return Response(_detail(*detail))


class ConversationDetailView(TicketView):
    @extend_schema(responses={200: s.ConversationDetailOutput}, tags=["messaging"])
    def get(self, request: Request, conversation_id: int) -> Response:
        ticket = self.ticket
        detail = selectors.conversation_get(
            ticket=ticket, user_id=ticket.user_id, conversation_id=conversation_id
        )
        return Response(_detail(*detail))


class ConversationSettingsView(TicketView):
    @extend_schema(
        request=s.ConversationSettingsInput,
        responses={200: s.ConversationSettingsOutput},
        tags=["messaging"],
    )
    def patch(self, request: Request, conversation_id: int) -> Response:
        ticket = self.ticket
        data = self.valid(s.ConversationSettingsInput, request.data)
        membership = conversations.conversation_settings_update(
            ticket=ticket,
            user_id=ticket.user_id,
            conversation_id=conversation_id,
            muted=data.get("muted"),
            pinned=data.get("pinned"),
        )
        body = {
            "conversation": conversation_id,
            "muted": membership.muted,
            "pinned": membership.pinned_at is not None,
        }
        return Response(s.ConversationSettingsOutput(body).data)


class HistoryView(TicketView):
    @extend_schema(
        parameters=[s.HistoryInput], responses={200: s.HistoryOutput}, tags=["messaging"]
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        ticket = self.ticket
        data = self.valid(s.HistoryInput, request.query_params.dict())
        messages = selectors.message_history(
            ticket=ticket,
            user_id=ticket.user_id,
            conversation_id=conversation_id,
            before=data.get("before"),
            after=data.get("after"),
            limit=data["limit"],
        )
        return Response({"messages": messages})


class SearchView(TicketView):
    @extend_schema(
        parameters=[s.MessageSearchInput],
        responses={200: s.MessageSearchOutput},
        tags=["messaging"],
    )
    def get(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.MessageSearchInput, request.query_params.dict())
        answer = selectors.message_search(
            ticket=ticket,
            user_id=ticket.user_id,
            query=data["q"],
            conversation_id=data.get("conversation"),
            before=data.get("before"),
            limit=data["limit"],
        )
        return Response(answer)


class GroupCreateView(TicketView):
    @extend_schema(
        request=s.GroupCreateInput,
        responses={201: s.ConversationDetailOutput},
        extensions=links({201: SEND_HERE}),
        tags=["groups"],
    )
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.GroupCreateInput, request.data)
        group = conversations.group_create(
            ticket=ticket, user_id=ticket.user_id, name=data["name"], member_ids=data["members"]
        )
        detail = selectors.conversation_get(
            ticket=ticket, user_id=ticket.user_id, conversation_id=group.pk
        )
        return Response(_detail(*detail), status=status.HTTP_201_CREATED)


class GroupDetailView(TicketView):
    @extend_schema(
        request=s.GroupUpdateInput, responses={200: s.ConversationDetailOutput}, tags=["groups"]
    )
    def patch(self, request: Request, conversation_id: int) -> Response:
        ticket = self.ticket
        data = self.valid(s.GroupUpdateInput, request.data)
        conversations.group_update(
            ticket=ticket, user_id=ticket.user_id, conversation_id=conversation_id, **data
        )
        detail = selectors.conversation_get(
            ticket=ticket, user_id=ticket.user_id, conversation_id=conversation_id
        )
        return Response(_detail(*detail))


class GroupMembersView(TicketView):
    @extend_schema(request=s.InviteInput, responses={200: s.MessageOutput}, tags=["groups"])
    def post(self, request: Request, conversation_id: int) -> Response:
        ticket = self.ticket
        data = self.valid(s.InviteInput, request.data)
        notice = conversations.group_invite(
            ticket=ticket,
            user_id=ticket.user_id,
            conversation_id=conversation_id,
            member_ids=data["user_ids"],
        )
        return Response(selectors.messages_by_id([notice.pk])[notice.pk])


class GroupMemberView(TicketView):
    @extend_schema(request=None, responses={204: None}, tags=["groups"])
    def delete(self, request: Request, conversation_id: int, user_id: int) -> Response:
        ticket = self.ticket
        conversations.group_remove(
            ticket=ticket,
            user_id=ticket.user_id,
            conversation_id=conversation_id,
            member_id=user_id,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class GroupLeaveView(TicketView):
    @extend_schema(request=None, responses={204: None}, tags=["groups"])
    def post(self, request: Request, conversation_id: int) -> Response:
        ticket = self.ticket
        conversations.group_leave(
            ticket=ticket, user_id=ticket.user_id, conversation_id=conversation_id
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class GroupAdminView(TicketView):
    def _set(self, request: Request, conversation_id: int, user_id: int, admin: bool) -> Response:
        ticket = self.ticket
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


class UploadView(TicketView):
    parser_classes = [MultiPartParser]

    @extend_schema(request=s.UploadInput, responses={201: s.AttachmentOutput}, tags=["messaging"])
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.UploadInput, request.data)
        attachment = attachments.attachment_upload(
            ticket=ticket, user_id=ticket.user_id, kind=data["kind"], upload=data["file"]
        )
        return Response(s.AttachmentOutput(attachment).data, status=status.HTTP_201_CREATED)


ATTACHMENT_TYPES = sorted({*IMAGE_TYPES.values(), *settings.MESSAGING_FILE_TYPES})


class AttachmentView(TicketView):
    @extend_schema(
        responses={(200, content_type): OpenApiTypes.BINARY for content_type in ATTACHMENT_TYPES},
        tags=["messaging"],
        description="The attachment's bytes, with the `content_type` it was uploaded as "
        "(images inline, files as a download).",
    )
    def get(self, request: Request, attachment_id: Any) -> FileResponse:
        ticket = self.ticket
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
