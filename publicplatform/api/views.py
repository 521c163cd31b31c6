"""Users' side of official accounts: search, follow, unfollow, the account behind a
chat, menu taps. One view per use case; each calls one service or selector with
the verified ticket."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.types import VerifiedTicket
from publicplatform import selectors
from publicplatform.api import serializers as s
from publicplatform.services import followers

TAGS = ["official accounts"]


def _ticket(request: Request) -> VerifiedTicket:
    return cast(VerifiedTicket, request.auth)


def _valid(serializer_class: Any, data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return cast(dict[str, Any], serializer.validated_data)


def _card(ticket: VerifiedTicket, account_id: int) -> Any:
    card = selectors.account_card(ticket=ticket, user_id=ticket.user_id, account_id=account_id)
    return s.AccountOutput(card).data


class SearchView(APIView):
    @extend_schema(
        parameters=[s.SearchInput], responses={200: s.AccountListOutput}, tags=TAGS,
        description="Accounts by name, appid or original id; a pool's name finds one of "
        "its members at random.",
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        ticket = _ticket(request)
        query = _valid(s.SearchInput, request.query_params)["q"]
        cards = selectors.account_search(ticket=ticket, user_id=ticket.user_id, query=query)
        return Response({"results": s.AccountOutput(cards, many=True).data})


class FollowingView(APIView):
    @extend_schema(responses={200: s.AccountListOutput}, tags=TAGS)
    def get(self, request: Request) -> Response:
        ticket = _ticket(request)
        cards = selectors.followed_accounts(ticket=ticket, user_id=ticket.user_id)
        return Response({"results": s.AccountOutput(cards, many=True).data})


class AccountView(APIView):
    @extend_schema(responses={200: s.AccountOutput}, tags=TAGS)
    def get(self, request: Request, account_id: int) -> Response:
        return Response(_card(_ticket(request), account_id))


class FollowView(APIView):
    @extend_schema(request=None, responses={200: s.AccountOutput}, tags=TAGS)
    def post(self, request: Request, account_id: int) -> Response:
        ticket = _ticket(request)
        followers.account_follow(ticket=ticket, user_id=ticket.user_id, account_id=account_id)
        return Response(_card(ticket, account_id))


class UnfollowView(APIView):
    @extend_schema(request=None, responses={200: s.AccountOutput}, tags=TAGS)
    def post(self, request: Request, account_id: int) -> Response:
        ticket = _ticket(request)
        followers.account_unfollow(ticket=ticket, user_id=ticket.user_id, account_id=account_id)
        return Response(_card(ticket, account_id))


class ConversationAccountView(APIView):
    @extend_schema(responses={200: s.AccountOutput}, tags=TAGS)
    def get(self, request: Request, conversation_id: int) -> Response:
        ticket = _ticket(request)
        card = selectors.account_card_for_conversation(
            ticket=ticket, user_id=ticket.user_id, conversation_id=conversation_id
        )
        return Response(s.AccountOutput(card).data)


class MenuTapView(APIView):
    @extend_schema(request=s.MenuTapInput, responses={200: s.MenuTapOutput}, tags=TAGS)
    def post(self, request: Request, account_id: int) -> Response:
        ticket = _ticket(request)
        data = _valid(s.MenuTapInput, request.data)
        value = data["url"] if data["type"] == "view" else data["key"]
        url = followers.menu_tap(
            ticket=ticket, user_id=ticket.user_id, account_id=account_id,
            kind=data["type"], value=value,
        )  # fmt: skip
        return Response({"open_url": url})
