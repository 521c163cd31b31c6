"""HTTP endpoints of accounts and contacts: one view per use case, each parsing
input, calling one service or selector with the verified ticket, and shaping output."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors
from accounts.api import serializers as s
from accounts.services import contacts, devices, login, profile, registration, wechat_ids
from accounts.types import LoginResult, VerifiedTicket
from grayrelease.selectors import login_flags
from wechat_core.api.request import client_ip


def _ticket(request: Request) -> VerifiedTicket:
    return cast(VerifiedTicket, request.auth)


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


class TicketListView(ListAPIView):  # type: ignore[type-arg]
    """A paginated list read through a selector; outputs know the request's ticket."""

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "ticket": self.request.auth}


def _valid(serializer_class: Any, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return cast(dict[str, Any], serializer.validated_data)


# --- Registration, login, logout ----------------------------------------------------


class RegisterView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(request=s.RegisterInput, responses={201: s.SessionOutput}, tags=["accounts"])
    def post(self, request: Request) -> Response:
        data = _valid(s.RegisterInput, request.data)
        result = registration.user_register(
            phone=data.get("phone"),
            email=data.get("email"),
            password=data["password"],
            nickname=data["nickname"],
            device=s.DeviceInput.info(data["device"]),
            ip=client_ip(request),
        )
        return _session(result, status_code=status.HTTP_201_CREATED)


class LoginView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(request=s.LoginInput, responses={200: s.SessionOutput}, tags=["accounts"])
    def post(self, request: Request) -> Response:
        data = _valid(s.LoginInput, request.data)
        result = login.login(
            identifier=data["identifier"],
            password=data["password"],
            device=s.DeviceInput.info(data["device"]),
            ip=client_ip(request),
        )
        return _session(result, status_code=status.HTTP_200_OK)


class LogoutView(APIView):
    @extend_schema(request=None, responses={204: None}, tags=["accounts"])
    def post(self, request: Request) -> Response:
        ticket = _ticket(request)
        devices.logout(ticket=ticket, user_id=ticket.user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    @extend_schema(request=None, responses={200: s.LogoutAllOutput}, tags=["accounts"])
    def post(self, request: Request) -> Response:
        ticket = _ticket(request)
        revoked = devices.logout_everywhere(ticket=ticket, user_id=ticket.user_id)
        return Response(s.LogoutAllOutput({"revoked": revoked}).data)


# --- Profile -------------------------------------------------------------------------


class MeView(APIView):
    @extend_schema(responses={200: s.MeOutput}, tags=["profile"])
    def get(self, request: Request) -> Response:
        ticket = _ticket(request)
        return Response(s.MeOutput(selectors.user_get(ticket=ticket, user_id=ticket.user_id)).data)

    @extend_schema(request=s.ProfileUpdateInput, responses={200: s.MeOutput}, tags=["profile"])
    def patch(self, request: Request) -> Response:
        ticket = _ticket(request)
        data = _valid(s.ProfileUpdateInput, request.data)
        user = profile.profile_update(ticket=ticket, user_id=ticket.user_id, **data)
        return Response(s.MeOutput(user).data)


class AvatarView(APIView):
    parser_classes = [MultiPartParser]

    @extend_schema(request=s.AvatarInput, responses={200: s.MeOutput}, tags=["profile"])
    def put(self, request: Request) -> Response:
        ticket = _ticket(request)
        data = _valid(s.AvatarInput, request.data)
        user = profile.avatar_set(ticket=ticket, user_id=ticket.user_id, upload=data["avatar"])
        return Response(s.MeOutput(user).data)

    @extend_schema(request=None, responses={200: s.MeOutput}, tags=["profile"])
    def delete(self, request: Request) -> Response:
        ticket = _ticket(request)
        user = profile.avatar_clear(ticket=ticket, user_id=ticket.user_id)
        return Response(s.MeOutput(user).data)


class WeChatIdView(APIView):
    @extend_schema(request=s.WeChatIdInput, responses={200: s.MeOutput}, tags=["profile"])
    def put(self, request: Request) -> Response:
        ticket = _ticket(request)
        data = _valid(s.WeChatIdInput, request.data)
        user = wechat_ids.wechat_id_claim(
            ticket=ticket, user_id=ticket.user_id, wechat_id=data["wechat_id"]
        )
        return Response(s.MeOutput(user).data)


# --- Devices -------------------------------------------------------------------------


@extend_schema(tags=["devices"])
class DeviceListView(TicketListView):
    serializer_class = s.DeviceOutput

    def get_queryset(self) -> QuerySet[Any]:
        ticket = _ticket(self.request)
        return selectors.device_list(ticket=ticket, user_id=ticket.user_id)


class DeviceDetailView(APIView):
    @extend_schema(request=None, responses={204: None}, tags=["devices"])
    def delete(self, request: Request, device_id: int) -> Response:
        ticket = _ticket(request)
        devices.device_remove(ticket=ticket, user_id=ticket.user_id, device_id=device_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Contacts -------------------------------------------------------------------------


class ContactSearchView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("q", str, required=True)],
        responses={200: s.SearchOutput},
        tags=["contacts"],
    )
    def get(self, request: Request) -> Response:
        ticket = _ticket(request)
        data = _valid(s.SearchInput, request.query_params)
        users = selectors.contact_search(ticket=ticket, user_id=ticket.user_id, query=data["q"])
        return Response(s.SearchOutput({"results": users}).data)


@extend_schema(tags=["contacts"])
class FriendListView(TicketListView):
    serializer_class = s.FriendOutput

    def get_queryset(self) -> QuerySet[Any]:
        ticket = _ticket(self.request)
        return selectors.friend_list(ticket=ticket, user_id=ticket.user_id)


class FriendDetailView(APIView):
    @extend_schema(responses={200: s.FriendOutput}, tags=["contacts"])
    def get(self, request: Request, user_id: int) -> Response:
        ticket = _ticket(request)
        friendship = selectors.friend_get(ticket=ticket, user_id=ticket.user_id, friend_id=user_id)
        return Response(s.FriendOutput(friendship).data)

    @extend_schema(request=s.RemarkInput, responses={200: s.FriendOutput}, tags=["contacts"])
    def patch(self, request: Request, user_id: int) -> Response:
        ticket = _ticket(request)
        data = _valid(s.RemarkInput, request.data)
        friendship = contacts.friend_set_remark(
            ticket=ticket, user_id=ticket.user_id, friend_id=user_id, remark=data["remark"]
        )
        return Response(s.FriendOutput(friendship).data)

    @extend_schema(request=None, responses={204: None}, tags=["contacts"])
    def delete(self, request: Request, user_id: int) -> Response:
        ticket = _ticket(request)
        contacts.friend_delete(ticket=ticket, user_id=ticket.user_id, friend_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["contacts"])
class FriendRequestListView(TicketListView):
    serializer_class = s.FriendRequestOutput

    @extend_schema(parameters=[OpenApiParameter("direction", str, enum=["incoming", "outgoing"])])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        ticket = _ticket(self.request)
        data = _valid(s.FriendRequestListInput, self.request.query_params)
        return selectors.friend_request_list(
            ticket=ticket, user_id=ticket.user_id, direction=data["direction"]
        )

    @extend_schema(
        request=s.FriendRequestCreateInput,
        responses={201: s.FriendRequestSendOutput},
        tags=["contacts"],
    )
    def post(self, request: Request) -> Response:
        ticket = _ticket(request)
        data = _valid(s.FriendRequestCreateInput, request.data)
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
            }
        ).data
        return Response(body, status=status.HTTP_201_CREATED)


class FriendRequestAcceptView(APIView):
    @extend_schema(request=s.AcceptInput, responses={200: s.FriendOutput}, tags=["contacts"])
    def post(self, request: Request, request_id: int) -> Response:
        ticket = _ticket(request)
        data = _valid(s.AcceptInput, request.data)
        friendship = contacts.friend_request_accept(
            ticket=ticket,
            user_id=ticket.user_id,
            request_id=request_id,
            remark=data.get("remark", ""),
        )
        return Response(s.FriendOutput(friendship).data)


class FriendRequestDeclineView(APIView):
    @extend_schema(request=None, responses={200: s.FriendRequestOutput}, tags=["contacts"])
    def post(self, request: Request, request_id: int) -> Response:
        ticket = _ticket(request)
        declined = contacts.friend_request_decline(
            ticket=ticket, user_id=ticket.user_id, request_id=request_id
        )
        return Response(s.FriendRequestOutput(declined).data)


@extend_schema(tags=["contacts"])
class BlockListView(TicketListView):
    serializer_class = s.BlockOutput

    def get_queryset(self) -> QuerySet[Any]:
        ticket = _ticket(self.request)
        return selectors.block_list(ticket=ticket, user_id=ticket.user_id)


class BlockDetailView(APIView):
    @extend_schema(request=None, responses={200: s.BlockOutput}, tags=["contacts"])
    def put(self, request: Request, user_id: int) -> Response:
        ticket = _ticket(request)
        block = contacts.user_block(ticket=ticket, user_id=ticket.user_id, target_id=user_id)
        return Response(s.BlockOutput(block).data)

    @extend_schema(request=None, responses={204: None}, tags=["contacts"])
    def delete(self, request: Request, user_id: int) -> Response:
        ticket = _ticket(request)
        contacts.user_unblock(ticket=ticket, user_id=ticket.user_id, target_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
