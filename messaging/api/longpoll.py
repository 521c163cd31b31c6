"""Long-poll sync over HTTP: `GET /api/messaging/sync?key=&limit=&timeout=`.

For clients without websockets. Answers at once when entries after `key` exist;
otherwise it waits (at most `timeout` seconds, at most
MESSAGING_LONGPOLL_MAX_SECONDS) for a notify on the user's channel-layer group,
then answers with whatever arrived (possibly nothing: sync again). An async
view, so a waiting client holds no thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async  # type: ignore[import-untyped]
from channels.layers import get_channel_layer  # type: ignore[import-untyped]
from django.conf import settings
from django.http import HttpRequest, JsonResponse

from accounts.api.authentication import ticket_from_header
from accounts.types import VerifiedTicket
from messaging import protocol, selectors
from messaging.services.synclog import user_group
from messaging.types import SyncPage
from wechat_core.api.errors import error_body
from wechat_core.errors import InvalidInput, NotAuthenticated, ServiceError


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


async def _read(ticket: VerifiedTicket, since: int, limit: int) -> SyncPage:
    page: SyncPage = await database_sync_to_async(selectors.sync_read, thread_sensitive=False)(
        ticket=ticket, user_id=ticket.user_id, since=since, limit=limit
    )
    return page


async def _wait_for_notify(user_id: int, timeout: float, ready: asyncio.Event) -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(user_group(user_id), channel)
    ready.set()
    try:
        await asyncio.wait_for(layer.receive(channel), timeout)
    except TimeoutError:
        pass
    finally:
        await layer.group_discard(user_group(user_id), channel)


async def sync_longpoll(request: HttpRequest) -> JsonResponse:
    if request.method != "GET":
        return JsonResponse(error_body("method_not_allowed", "Use GET."), status=405)
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
        if not page.entries and timeout:
            # Subscribe first, then look again: a notify between the two reads is not lost.
            ready = asyncio.Event()
            waiter = asyncio.create_task(_wait_for_notify(ticket.user_id, timeout, ready))
            await ready.wait()
            page = await _read(ticket, key, limit)
            if page.entries:
                waiter.cancel()
            else:
                await waiter
                page = await _read(ticket, key, limit)
    except ServiceError as error:
        response = JsonResponse(
            error_body(error.code, error.message, error.details), status=error.status
        )
        for name, value in error.headers().items():
            response[name] = value
        return response
    body: dict[str, Any] = protocol.sync_body(page)
    return JsonResponse(body)
