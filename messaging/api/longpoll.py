"""Long-poll sync over HTTP: `GET /api/messaging/sync?key=&limit=&timeout=`.

For clients without websockets (its page read on the event loop where the
websocket's is: messaging.selectors_async). Answers at once when entries after `key` exist;
otherwise it waits (at most `timeout` seconds, at most
MESSAGING_LONGPOLL_MAX_SECONDS) for a notify on the user's group (wechat_core.realtime),
then answers with whatever arrived (possibly nothing: sync again). An async
view, so a waiting client holds no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.db import database_sync_to_async  # type: ignore[import-untyped]
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ticket_from_header
from accounts.types import VerifiedTicket
from messaging import protocol, selectors
from messaging.api import serializers as s
from messaging.selectors_async import sync_read_wire_async
from messaging.types import WireSyncPage
from wechat_core.api.errors import error_body
from wechat_core.api.schema import described_by
from wechat_core.errors import InvalidInput, NotAuthenticated, ServiceError
from wechat_core.realtime import hub, user_group


def _query_int(request: HttpRequest, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.GET.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not minimum <= int(raw) <= maximum:
        raise InvalidInput(
            f"Invalid input: {name}: an integer from {minimum} to {maximum}.",
            details={"fields": {name: [f"An integer from {minimum} to {maximum}."]}},
        )
    return int(raw)


async def _read(ticket: VerifiedTicket, since: int, limit: int) -> WireSyncPage:
    # On the event loop where it can be, as the websocket's sync (selectors_async).
    on_loop = await sync_read_wire_async(
        ticket=ticket, user_id=ticket.user_id, since=since, limit=limit
    )
    if on_loop is not None:
        return on_loop
    page: WireSyncPage = await database_sync_to_async(
        selectors.sync_read_wire, thread_sensitive=False
    )(ticket=ticket, user_id=ticket.user_id, since=since, limit=limit)
    return page


async def _read_after_notify(
    ticket: VerifiedTicket, key: int, limit: int, timeout: float
) -> WireSyncPage:
    """Wait for the user's next notify (or the timeout), then read again."""
    notified = asyncio.Event()

    def listener(message: dict[str, Any]) -> None:
        if message.get("type") == "sync.notify":
            notified.set()

    group = user_group(ticket.user_id)
    await hub().join(group, listener)
    try:
        # Listen first, then look again: an entry committed in between is not missed.
        page = await _read(ticket, key, limit)
        if page.key == key:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(notified.wait(), timeout)
            page = await _read(ticket, key, limit)
        return page
    finally:
        hub().leave(group, listener)


class SyncLongPollSchema(APIView):
    """The OpenAPI description of `sync_longpoll`; never routed."""

    @extend_schema(
        operation_id="messaging_sync",
        parameters=[s.SyncQuery],
        responses={200: s.SyncOutput},
        tags=["messaging"],
        description="Long-poll sync (docs/protocol.md §5): the entries after `key`, at once "
        "when there are some, else after waiting up to `timeout` seconds for one (the answer "
        "may then be empty: sync again from the returned `key`).",
    )
    def get(self, request: Request) -> Response:
        raise NotImplementedError


@described_by(SyncLongPollSchema)
@csrf_exempt  # the ticket is a header, never a cookie; a wrong method gets its 405
async def sync_longpoll(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return JsonResponse(
            error_body("method_not_allowed", "Use GET."), status=405, headers={"Allow": "GET"}
        )
    try:
        header = request.headers.get("Authorization", "").encode("latin-1", "replace")
        ticket = await database_sync_to_async(ticket_from_header, thread_sensitive=False)(header)
        if ticket is None:
            raise NotAuthenticated()
        key = _query_int(request, "key", 0, 0, 2**63 - 1)
        limit = _query_int(
            request,
            "limit",
            settings.MESSAGING_SYNC_DEFAULT_LIMIT,
            1,
            settings.MESSAGING_SYNC_MAX_LIMIT,
        )
        timeout = _query_int(request, "timeout", 25, 0, settings.MESSAGING_LONGPOLL_MAX_SECONDS)
        page = await _read(ticket, key, limit)
        if page.key == key and timeout:
            page = await _read_after_notify(ticket, key, limit, timeout)
    except ServiceError as error:
        response = JsonResponse(
            error_body(error.code, error.message, error.details), status=error.status
        )
        for name, value in error.headers().items():
            response[name] = value
        return response
    return HttpResponse(protocol.sync_json(page, frame=False), content_type="application/json")
