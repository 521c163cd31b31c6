"""Users' side of official accounts: search, follow, unfollow, the account behind a
chat, menu taps. One view per use case; each calls one service or selector with
the verified ticket."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.ticketview import TicketView
from accounts.types import VerifiedTicket
from publicplatform import selectors
from publicplatform.api import serializers as s
from publicplatform.services import followers

TAGS = ["official accounts"]


def _card(ticket: VerifiedTicket, account_id: int) -> Any:
    card = selectors.account_card(ticket=ticket, user_id=ticket.user_id, account_id=account_id)
    return s.AccountOutput(card).data


class SearchView(TicketView):
    @extend_schema(
        parameters=[s.SearchInput],
        responses={200: s.AccountListOutput},
        tags=TAGS,
        description="Accounts by name, appid or original id; a pool's name finds one of "
        "its members at random.",
    )
    def get(self, request: Request) -> Response:
        ticket = self.ticket
        query = self.valid(s.SearchInput, request.query_params.dict())["q"]
        cards = selectors.account_search(ticket=ticket, user_id=ticket.user_id, query=query)
        return Response({"results": s.AccountOutput(cards, many=True).data})


class FollowingView(TicketView):
    @extend_schema(responses={200: s.AccountListOutput}, tags=TAGS)
    def get(self, request: Request) -> Response:
        ticket = self.ticket
        cards = selectors.followed_accounts(ticket=ticket, user_id=ticket.user_id)
        return Response({"results": s.AccountOutput(cards, many=True).data})


class AccountView(TicketView):
    @extend_schema(responses={200: s.AccountOutput}, tags=TAGS)
    def get(self, request: Request, account_id: int) -> Response:
        return Response(_card(self.ticket, account_id))


class FollowView(TicketView):
    @extend_schema(request=None, responses={200: s.AccountOutput}, tags=TAGS)
    def post(self, request: Request, account_id: int) -> Response:
        ticket = self.ticket
        followers.account_follow(ticket=ticket, user_id=ticket.user_id, account_id=account_id)
        return Response(_card(ticket, account_id))


class UnfollowView(TicketView):
    @extend_schema(request=None, responses={200: s.AccountOutput}, tags=TAGS)
    def post(self, request: Request, account_id: int) -> Response:
        ticket = self.ticket
        followers.account_unfollow(ticket=ticket, user_id=ticket.user_id, account_id=account_id)
        return Response(_card(ticket, account_id))


class ConversationAccountView(TicketView):
    @extend_schema(responses={200: s.AccountOutput}, tags=TAGS)
    def get(self, request: Request, conversation_id: int) -> Response:
        ticket = self.ticket
        card = selectors.account_card_for_conversation(
            ticket=ticket, user_id=ticket.user_id, conversation_id=conversation_id
        )
        return Response(s.AccountOutput(card).data)


class MenuTapView(TicketView):
    @extend_schema(request=s.MenuTapInput, responses={200: s.MenuTapOutput}, tags=TAGS)
    def post(self, request: Request, account_id: int) -> Response:
        ticket = self.ticket
        data = self.valid(s.MenuTapInput, request.data)
        value = data["url"] if data["type"] == "view" else data["key"]
        url = followers.menu_tap(
            ticket=ticket,
            user_id=ticket.user_id,
            account_id=account_id,
            kind=data["type"],
            value=value,
        )
        return Response({"open_url": url})
