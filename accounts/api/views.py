"""HTTP endpoints of accounts and contacts: one view per use case, each parsing
input, calling one service or selector with the verified ticket, and shaping output."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors
from accounts.api import serializers as s
from accounts.clientflags import login_flags
from accounts.services import contacts, devices, login, profile, registration, wechat_ids
from accounts.ticketview import TicketMixin, TicketView
from accounts.types import LoginResult, VerifiedTicket
from wechat_core.api.request import client_ip
from wechat_core.api.schema import links
from wechat_core.api.views import ServiceView


def _session(result: LoginResult, *, status_code: int) -> Response:
    body = s.SessionOutput(
        {
            "ticket": result.ticket,
            "expires_at": result.expires_at,
            "user": result.user,
            "device": result.device,
            "flags": login_flags(user=result.user, device=result.device),
        }
    ).data
    return Response(body, status=status_code)


class TicketListView(TicketMixin, ListAPIView):  # type: ignore[type-arg]
    """A paginated list read through a selector; outputs know the request's ticket."""

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "ticket": self.request.auth}


def _seen_by(ticket: VerifiedTicket, *users: int) -> dict[str, Any]:
    """Serializer context: which of these users' profiles the ticket's user may see."""
    visible = selectors.users_visible(ticket=ticket, user_id=ticket.user_id, other_ids=users)
    return {"visible_user_ids": visible}


class ContactListView(TicketListView):
    """A list naming other users, whose profiles show only to those who may see them."""

    def users_in(self, item: Any) -> tuple[int, ...]:
        raise NotImplementedError

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        if args:  # the page being answered
            items = list(args[0])
            users = {user for item in items for user in self.users_in(item)}
            context = kwargs.setdefault("context", self.get_serializer_context())
            context.update(_seen_by(self.ticket, *users))
            args = (items, *args[1:])
        return super().get_serializer(*args, **kwargs)


# --- Registration, login, logout ----------------------------------------------------


class RegisterView(ServiceView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(request=s.RegisterInput, responses={201: s.SessionOutput}, tags=["accounts"])
    def post(self, request: Request) -> Response:
        data = self.valid(s.RegisterInput, request.data)
        result = registration.user_register(
            phone=data.get("phone"),
            email=data.get("email"),
            password=data["password"],
            nickname=data["nickname"],
            device=s.DeviceInput.info(data["device"]),
            ip=client_ip(request),
        )
        return _session(result, status_code=status.HTTP_201_CREATED)


class LoginView(ServiceView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(request=s.LoginInput, responses={200: s.SessionOutput}, tags=["accounts"])
    def post(self, request: Request) -> Response:
        data = self.valid(s.LoginInput, request.data)
        result = login.login(
            identifier=data["identifier"],
            password=data["password"],
            device=s.DeviceInput.info(data["device"]),
            ip=client_ip(request),
        )
        return _session(result, status_code=status.HTTP_200_OK)


class LogoutView(TicketView):
    @extend_schema(request=None, responses={204: None}, tags=["accounts"])
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        devices.logout(ticket=ticket, user_id=ticket.user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(TicketView):
    @extend_schema(request=None, responses={200: s.LogoutAllOutput}, tags=["accounts"])
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        revoked = devices.logout_everywhere(ticket=ticket, user_id=ticket.user_id)
        return Response(s.LogoutAllOutput({"revoked": revoked}).data)


# --- Profile -------------------------------------------------------------------------


class MeView(TicketView):
    @extend_schema(responses={200: s.MeOutput}, tags=["profile"])
    def get(self, request: Request) -> Response:
        ticket = self.ticket
        return Response(s.MeOutput(selectors.user_get(ticket=ticket, user_id=ticket.user_id)).data)

    @extend_schema(request=s.ProfileUpdateInput, responses={200: s.MeOutput}, tags=["profile"])
    def patch(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.ProfileUpdateInput, request.data)
        user = profile.profile_update(ticket=ticket, user_id=ticket.user_id, **data)
        return Response(s.MeOutput(user).data)


class PasswordView(TicketView):
    @extend_schema(
        request=s.PasswordChangeInput, responses={200: s.PasswordChangeOutput}, tags=["profile"]
    )
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.PasswordChangeInput, request.data)
        revoked = profile.password_change(
            ticket=ticket,
            user_id=ticket.user_id,
            old_password=data["old_password"],
            new_password=data["new_password"],
        )
        return Response(s.PasswordChangeOutput({"revoked": revoked}).data)


class AvatarView(TicketView):
    parser_classes = [MultiPartParser]

    @extend_schema(request=s.AvatarInput, responses={200: s.MeOutput}, tags=["profile"])
    def put(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.AvatarInput, request.data)
        user = profile.avatar_set(ticket=ticket, user_id=ticket.user_id, upload=data["avatar"])
        return Response(s.MeOutput(user).data)

    @extend_schema(request=None, responses={200: s.MeOutput}, tags=["profile"])
    def delete(self, request: Request) -> Response:
        ticket = self.ticket
        user = profile.avatar_clear(ticket=ticket, user_id=ticket.user_id)
        return Response(s.MeOutput(user).data)


class WeChatIdView(TicketView):
    @extend_schema(request=s.WeChatIdInput, responses={200: s.MeOutput}, tags=["profile"])
    def put(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.WeChatIdInput, request.data)
        user = wechat_ids.wechat_id_claim(
            ticket=ticket, user_id=ticket.user_id, wechat_id=data["wechat_id"]
        )
        return Response(s.MeOutput(user).data)


# --- Devices -------------------------------------------------------------------------


@extend_schema(tags=["devices"])
class DeviceListView(TicketListView):
    serializer_class = s.DeviceOutput

    def get_queryset(self) -> QuerySet[Any]:
        ticket = self.ticket
        return selectors.device_list(ticket=ticket, user_id=ticket.user_id)


class DeviceDetailView(TicketView):
    @extend_schema(request=None, responses={204: None}, tags=["devices"])
    def delete(self, request: Request, device_id: int) -> Response:
        ticket = self.ticket
        devices.device_remove(ticket=ticket, user_id=ticket.user_id, device_id=device_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Contacts -------------------------------------------------------------------------


class ContactSearchView(TicketView):
    @extend_schema(
        parameters=[s.SearchInput],
        responses={200: s.SearchOutput},
        tags=["contacts"],
    )
    def get(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.SearchInput, request.query_params.dict())
        users = selectors.contact_search(ticket=ticket, user_id=ticket.user_id, query=data["q"])
        return Response(s.SearchOutput({"results": users}).data)


def _chat_with(user_id: str) -> dict[str, Any]:
    """The link from a friend to the 1:1 chat with them (OpenAPI links)."""
    return {
        "Chat": {
            "operationId": "messaging_conversations_direct_create",
            "requestBody": {"user_id": user_id},
            "description": "Open the 1:1 chat with this friend.",
        }
    }


@extend_schema(
    tags=["contacts"], extensions=links({200: _chat_with("$response.body#/results/0/user/id")})
)
class FriendListView(TicketListView):
    serializer_class = s.FriendOutput

    def get_queryset(self) -> QuerySet[Any]:
        ticket = self.ticket
        return selectors.friend_list(ticket=ticket, user_id=ticket.user_id)


class FriendDetailView(TicketView):
    @extend_schema(
        responses={200: s.FriendOutput},
        tags=["contacts"],
        extensions=links({200: _chat_with("$response.body#/user/id")}),
    )
    def get(self, request: Request, user_id: int) -> Response:
        ticket = self.ticket
        friendship = selectors.friend_get(ticket=ticket, user_id=ticket.user_id, friend_id=user_id)
        return Response(s.FriendOutput(friendship).data)

    @extend_schema(request=s.RemarkInput, responses={200: s.FriendOutput}, tags=["contacts"])
    def patch(self, request: Request, user_id: int) -> Response:
        ticket = self.ticket
        data = self.valid(s.RemarkInput, request.data)
        friendship = contacts.friend_set_remark(
            ticket=ticket, user_id=ticket.user_id, friend_id=user_id, remark=data["remark"]
        )
        return Response(s.FriendOutput(friendship).data)

    @extend_schema(request=None, responses={204: None}, tags=["contacts"])
    def delete(self, request: Request, user_id: int) -> Response:
        ticket = self.ticket
        contacts.friend_delete(ticket=ticket, user_id=ticket.user_id, friend_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["contacts"])
class FriendRequestListView(ContactListView):
    serializer_class = s.FriendRequestOutput

    def users_in(self, item: Any) -> tuple[int, ...]:
        return item.from_user_id, item.to_user_id

    @extend_schema(parameters=[s.FriendRequestListInput])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        ticket = self.ticket
        data = self.valid(s.FriendRequestListInput, self.request.query_params.dict())
        return selectors.friend_request_list(
            ticket=ticket, user_id=ticket.user_id, direction=data["direction"]
        )

    @extend_schema(
        request=s.FriendRequestCreateInput,
        responses={201: s.FriendRequestSendOutput},
        tags=["contacts"],
    )
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.FriendRequestCreateInput, request.data)
        outcome = contacts.friend_request_send(
            ticket=ticket,
            user_id=ticket.user_id,
            to_user_id=data["to_user_id"],
            greeting=data.get("greeting", ""),
        )
        body = s.FriendRequestSendOutput(
            {
                "outcome": "friends" if outcome.friendship is not None else "pending",
                "request": outcome.request,
                "friend": outcome.friendship,
            },
            context=_seen_by(ticket, data["to_user_id"]),
        ).data
        return Response(body, status=status.HTTP_201_CREATED)


class FriendRequestAcceptView(TicketView):
    @extend_schema(request=s.AcceptInput, responses={200: s.FriendOutput}, tags=["contacts"])
    def post(self, request: Request, request_id: int) -> Response:
        ticket = self.ticket
        data = self.valid(s.AcceptInput, request.data)
        friendship = contacts.friend_request_accept(
            ticket=ticket,
            user_id=ticket.user_id,
            request_id=request_id,
            remark=data.get("remark", ""),
        )
        return Response(s.FriendOutput(friendship).data)


class FriendRequestDeclineView(TicketView):
    @extend_schema(request=None, responses={200: s.FriendRequestOutput}, tags=["contacts"])
    def post(self, request: Request, request_id: int) -> Response:
        ticket = self.ticket
        declined = contacts.friend_request_decline(
            ticket=ticket, user_id=ticket.user_id, request_id=request_id
        )
        context = _seen_by(ticket, declined.from_user_id)
        return Response(s.FriendRequestOutput(declined, context=context).data)


@extend_schema(tags=["contacts"])
class BlockListView(ContactListView):
    serializer_class = s.BlockOutput

    def users_in(self, item: Any) -> tuple[int, ...]:
        return (item.blocked_id,)

    def get_queryset(self) -> QuerySet[Any]:
        ticket = self.ticket
        return selectors.block_list(ticket=ticket, user_id=ticket.user_id)


class BlockDetailView(TicketView):
    @extend_schema(request=None, responses={200: s.BlockOutput}, tags=["contacts"])
    def put(self, request: Request, user_id: int) -> Response:
        ticket = self.ticket
        block = contacts.user_block(ticket=ticket, user_id=ticket.user_id, target_id=user_id)
        return Response(s.BlockOutput(block, context=_seen_by(ticket, block.blocked_id)).data)

    @extend_schema(request=None, responses={204: None}, tags=["contacts"])
    def delete(self, request: Request, user_id: int) -> Response:
        ticket = self.ticket
        contacts.user_unblock(ticket=ticket, user_id=ticket.user_id, target_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
