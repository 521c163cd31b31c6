"""`POST /api/shake` answered in the event loop, before Django (issue 15; docs/shake.md).

The shake itself costs microseconds; Django's request cycle around it (the
middleware, DRF, the ticket authentication, the sync view in a thread) costs
milliseconds. `ShakeFastPath` answers the common case itself and hands every
other request to Django unchanged (the body it read is replayed), so a client
can never tell which of the two answered:

- It answers only a plain shake: no cookie, no query string, one `Ticket`
  header whose ticket this process has verified before and still holds (the
  cache of accounts.tickets, checked as `ticket_verify` checks a cached one, then
  `ticket_require_cached`), a device whose "last seen" is not due to be written,
  a small `application/json` body of ShakeInput's shape read by the same JSON
  reader as the API's parser, and no traffic-guard block known anywhere. Any
  doubt, any failure: Django answers (it counts the refusals, writes the device,
  renders the errors).
- The body is ShakeView's: `Engine.shake` in a worker thread as Django runs it,
  rendered by the same renderer (the serializer checked on sampled answers).
  Nothing here waits on Redis or the database in the event loop: what is due to
  be re-read (the tickets' shared version, the guard's blocks) is, in a thread.
- The headers are Django's own, learnt: the first answers Django gives to
  `POST /api/shake` for a combination of the request headers that can change
  response headers (host, scheme, Accept, Accept-Language, forwarded headers)
  are captured, and once two in a row agree (so nothing in them is per request)
  that set is replayed with this body's length. X-Throttle-Tier is added as
  AdmissionMiddleware adds it.
- The side effects of the middleware that this skips are made here the same
  way: the queuing time reported to admission control, the HTTP request count
  and duration (same labels), and the traffic guard's loop count. It is mounted
  inside AdmissionASGI and CampusGateASGI, which therefore admit, queue and count
  it as any request.

SHAKE_FAST_PATH switches it off (tests/shake/test_fastpath.py compares the two).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from channels.db import database_sync_to_async  # type: ignore[import-untyped]
from django.conf import settings
from django.http import HttpRequest
from django.urls import resolve
from rest_framework.renderers import JSONRenderer

from accounts.authentication import SCHEMES
from accounts.services.devices import device_touch_due
from accounts.tickets import (
    ticket_cache_refresh,
    ticket_cache_refresh_due,
    ticket_require_cached,
    ticket_verify_cached,
)
from accounts.types import VerifiedTicket
from monitoring.instrument.http import (
    HTTP_DURATION,
    HTTP_REQUESTS,
    request_fingerprint,
    route_of,
)
from monitoring.trafficguard import BLOCKS, guard_count, guard_escalate
from shake import wire
from shake.access import engine
from shake.api import serializers as s
from shake.api.views import ShakeView
from wechat_core.admission.controller import controller
from wechat_core.admission.http import ARRIVED
from wechat_core.admission.metrics import QUEUE_SECONDS
from wechat_core.errors import ServiceError
from wechat_core.jsoninput import json_load
from wechat_core.metrics import client_version_label, counter

logger = logging.getLogger(__name__)

FAST_PATH_REQUESTS = counter(
    "shake_fast_path_requests_total",
    "POST /api/shake by who answered: `fast` (before Django) or `django`.",
    ["answered_by"],
    process_labels=True,
)

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

PATH = "/api/shake"
# ShakeInput's fields and their bounds; a body of that shape is far below this.
_FIELDS: dict[str, int | None] = {
    name: getattr(field, "max_length", None) for name, field in s.ShakeInput().fields.items()
}
_MAX_BODY = 2 * sum(length or 0 for length in _FIELDS.values()) + 256
# Request headers that may change Django's response headers on this route (Host:
# ALLOWED_HOSTS; Accept: DRF's negotiation; Accept-Language: LocaleMiddleware;
# the forwarded ones: SecurityMiddleware's HTTPS). Their values key the learnt sets.
_KEY_HEADERS = (
    b"host",
    b"accept",
    b"accept-language",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-forwarded-port",
    b"x-forwarded-ssl",
)
# Headers read here; a request carrying one of them twice goes to Django.
_READ_HEADERS = frozenset((*_KEY_HEADERS, b"authorization", b"content-type", b"content-length"))
_CHECK_FIRST, _CHECK_EVERY = 64, 1024
_ACCEPTED = (b"*/*", b"application/json")
_LEARNT_MAX = 256
_VARY_SPLIT = re.compile(r"\s*,\s*")


class _FallThrough(Exception):
    """Django answers this request."""


class ShakeFastPath:
    """Wraps the Django ASGI application (inside admission, see wechat_core/asgi.py)."""

    def __init__(self, app: App) -> None:
        self.app = app
        # Per key: the header set Django answered with (None: never fast for this
        # key), and the last one seen while it was not yet confirmed.
        self._learnt: dict[tuple[Any, ...], list[tuple[bytes, bytes]] | None] = {}
        self._pending: dict[tuple[Any, ...], list[tuple[bytes, bytes]]] = {}
        self._route: tuple[str, str] | None = None
        self._renderer = JSONRenderer()
        self._rendered = 0
        self._serialize = False

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or not settings.SHAKE_FAST_PATH
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = _headers(scope)
        key = _key(scope, headers) if headers is not None else None
        template = self._learnt.get(key) if key is not None else None
        if headers is None or key is None or template is None or not self._route_is_shake():
            await self._django(scope, receive, send, key)
            return
        # Cheap checks first: a body that cannot qualify is not read here at all.
        try:
            length = int(headers.get(b"content-length", b""))
        except ValueError:
            length = -1
        if (
            headers.get(b"content-type") != b"application/json"
            or headers.get(b"accept", b"*/*") not in _ACCEPTED  # DRF reads its parameters
            or not 0 < length <= _MAX_BODY
        ):
            await self._django(scope, receive, send, key)
            return
        await _refresh_shared()
        ticket = _cached_ticket(headers.get(b"authorization"))
        if ticket is None or _touch_due(ticket) or _guard_may_refuse():
            await self._django(scope, receive, send, key)
            return
        read, body = await _read_body(receive)
        data = _shake_input(body) if body is not None and len(body) == length else None
        if data is None:
            await self._django(scope, _replay(read, receive), send, key)
            return
        try:
            await self._answer(scope, send, ticket, data, template, started)
        except _FallThrough:
            await self._django(scope, _replay(read, receive), send, key)

    async def _answer(
        self,
        scope: dict[str, Any],
        send: Send,
        ticket: VerifiedTicket,
        data: dict[str, Any],
        template: list[tuple[bytes, bytes]],
        started: float,
    ) -> None:
        arrived = scope.get(ARRIVED)
        try:
            # In a thread, as Django runs it: a winner's Redis calls (cross-process caps,
            # quotas; up to SHAKE_REDIS_TIMEOUT_SECONDS each) must not hold the event loop.
            answer = await asyncio.to_thread(
                engine().shake,
                user_id=ticket.user_id,
                record_token=wire.record_from(data),
                schedule_token=wire.schedule_from(data),
            )
            body = self._render(wire.shake_json(answer))
        except Exception as error:  # Django answers it, as it would have (500 included)
            logger.exception("shake fast path failed; Django answers")
            raise _FallThrough from error
        # AdmissionMiddleware's part: the time queued before this ran, and the tier.
        if arrived is not None:
            waited = started - arrived
            controller().queued(waited)
            QUEUE_SECONDS.observe("http", value=waited)
        length = str(len(body)).encode()
        response_headers = [
            (name, length if name.lower() == b"content-length" else value)
            for name, value in template
        ]
        if arrived is not None and (tier := controller().tier()):
            response_headers.append((b"X-Throttle-Tier", str(tier).encode()))
        await self._count(ticket, body, started)
        FAST_PATH_REQUESTS.inc("fast")
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})

    async def _count(self, ticket: VerifiedTicket, body: bytes, started: float) -> None:
        """MonitoringMiddleware's part: the request counted and timed, the guard's count."""
        if not settings.MONITORING_ENABLED:
            return
        module, route = self._route or ("none", "unmatched")
        version, platform = client_version_label(ticket.client_version), ticket.platform
        HTTP_REQUESTS.inc(module, route, "POST", "2xx", version, platform)
        if route not in settings.MONITORING_LONG_POLL_ROUTES:
            HTTP_DURATION.observe(
                module, route, "POST", version, platform, value=time.perf_counter() - started
            )
        if PATH.lstrip("/") in settings.MONITORING_GUARD_EXEMPT_ROUTES:
            return
        if not settings.MONITORING_GUARD_ENABLED:
            return
        identity, endpoint = f"device:{ticket.device_id}", f"POST {route}"
        fingerprint = request_fingerprint("POST", PATH, 200, body)
        repeats = guard_count(identity, endpoint, fingerprint, failed=False)
        if repeats:  # a sharing step: one Redis round trip, maybe a block written
            await asyncio.to_thread(guard_escalate, identity, endpoint, repeats)

    def _render(self, data: dict[str, Any]) -> bytes:
        """ShakeView's bytes. Its output serializer hands shake_json's plain values back
        unchanged but costs a quarter of a millisecond, so it is skipped; the first
        answers and one in _CHECK_EVERY are rendered both ways, and a difference puts
        it back for good (and is logged: shake_json and ShakeOutput disagree)."""
        body = cast(bytes, self._renderer.render(data))
        self._rendered += 1
        if self._serialize or self._rendered <= _CHECK_FIRST or not self._rendered % _CHECK_EVERY:
            serialized = cast(bytes, self._renderer.render(s.ShakeOutput(data).data))
            if serialized != body and not self._serialize:
                logger.error("ShakeOutput changes shake_json's answer; serializing from now on")
                self._serialize = True
            return serialized
        return body

    def _route_is_shake(self) -> bool:
        """The URL still leads to ShakeView (else this never answers); its metric labels."""
        if self._route is None:
            match = resolve(PATH)
            if getattr(match.func, "view_class", None) is not ShakeView:
                self._route = ("", "")
            else:
                probe = HttpRequest()
                probe.path = probe.path_info = PATH
                probe.resolver_match = match
                self._route = route_of(probe)
        return self._route != ("", "")

    async def _django(
        self, scope: dict[str, Any], receive: Receive, send: Send, key: tuple[Any, ...] | None
    ) -> None:
        FAST_PATH_REQUESTS.inc("django")
        if key is None or key in self._learnt:
            await self.app(scope, receive, send)
            return

        async def watching(message: Message) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 200:
                self._learn(key, list(message.get("headers", ())))
            await send(message)

        await self.app(scope, receive, watching)

    def _learn(self, key: tuple[Any, ...], headers: list[tuple[bytes, bytes]]) -> None:
        if key in self._learnt:
            return
        if len(self._learnt) >= _LEARNT_MAX:
            return  # so many combinations: the rest go to Django
        names = [name.lower() for name, _ in headers]
        usable = (
            b"set-cookie" not in names
            and names.count(b"content-length") == 1
            and _vary_within_key(headers)
        )
        if not usable:
            self._learnt[key] = None
            self._pending.pop(key, None)
            return
        # As Django wrote them (names' case included), but for the two set per answer:
        # the length, and the tier (AdmissionMiddleware adds it last).
        seen = [
            (name, b"" if name.lower() == b"content-length" else value)
            for name, value in headers
            if name.lower() != b"x-throttle-tier"
        ]
        if self._pending.pop(key, None) == seen:
            self._learnt[key] = seen
        else:
            self._pending[key] = seen


def _headers(scope: dict[str, Any]) -> dict[bytes, bytes] | None:
    """The request headers read here, or None when the request must go to Django
    (a cookie: sessions and CSRF are Django's; a header read here sent twice)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            return None
        if name in _READ_HEADERS:
            if name in found:
                return None
            found[name] = value
    return found


def _key(scope: dict[str, Any], headers: dict[bytes, bytes]) -> tuple[Any, ...] | None:
    if scope.get("query_string") or scope.get("root_path"):
        return None
    server = scope.get("server")
    return (
        scope.get("scheme"),
        tuple(server) if server else None,
        *(headers.get(name) for name in _KEY_HEADERS),
    )


def _vary_within_key(headers: list[tuple[bytes, bytes]]) -> bool:
    """Django's answer varies only by headers the key holds (or a cookie, which goes
    to Django): otherwise a learnt set could belong to another request."""
    allowed = {name.decode() for name in _KEY_HEADERS} | {"cookie"}
    for name, value in headers:
        if name.lower() == b"vary":
            for part in _VARY_SPLIT.split(value.decode("latin-1").strip()):
                if part and part.lower() not in allowed:
                    return False
    return True


def _cached_ticket(header: bytes | None) -> VerifiedTicket | None:
    """The ticket of an Authorization header if this process holds it verified and
    live (ticket_verify's cached case, without its refusals: a refusal is Django's,
    which counts it); None when only Django can tell."""
    if not header:
        return None
    try:
        scheme, _, token = header.decode("ascii").partition(" ")
    except UnicodeDecodeError:
        return None
    if scheme.lower() not in SCHEMES:
        return None
    ticket = ticket_verify_cached(token=token.strip())
    if ticket is None:
        return None
    try:
        if not ticket_require_cached(ticket, user_id=ticket.user_id):
            return None
    except ServiceError:
        return None
    return ticket


def _guard_watching() -> bool:
    return (
        settings.MONITORING_ENABLED
        and settings.MONITORING_GUARD_ENABLED
        and PATH.lstrip("/") not in settings.MONITORING_GUARD_EXEMPT_ROUTES
    )


def _blocks_current() -> bool:
    return BLOCKS.peek() is not None


async def _refresh_shared() -> None:
    """What Django's thread would re-read for this request, re-read in a thread when
    due (the tickets' shared version every SHARED_STATE_POLL_SECONDS, the traffic
    guard's blocks when they moved): the event loop never waits on Redis (up to its
    socket timeout when it is unreachable) or the database."""
    if ticket_cache_refresh_due():
        await asyncio.to_thread(ticket_cache_refresh)
    if _guard_watching() and not _blocks_current():
        await database_sync_to_async(BLOCKS.get)()


def _touch_due(ticket: VerifiedTicket) -> bool:
    """Whether the authentication would write the device's "last seen" now (a query:
    Django does it)."""
    return device_touch_due(device_id=ticket.device_id)


def _guard_may_refuse() -> bool:
    """Whether the traffic guard might refuse this request: some client is blocked, or
    this process's copy of the blocks is stale (reloading it is Django's)."""
    if not _guard_watching():
        return False
    blocks = BLOCKS.peek()
    return blocks is None or bool(blocks)


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages read, and the body if it came whole within _MAX_BODY."""
    read: list[Message] = []
    body = b""
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            return read, None
        body += message.get("body", b"")
        if len(body) > _MAX_BODY:
            return read, None
        if not message.get("more_body", False):
            return read, body


def _replay(read: list[Message], receive: Receive) -> Receive:
    pending = list(read)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def _shake_input(body: bytes) -> dict[str, Any] | None:
    """ShakeInput's validated data when the body is plainly of its shape (strings the
    serializer would keep as they are); None for anything else (Django judges it)."""
    try:
        data = json_load(body.decode("utf-8"))
    except Exception:
        return None
    if not isinstance(data, dict) or not set(data) <= set(_FIELDS):
        return None
    for name, value in data.items():
        if value is None:
            continue
        if not isinstance(value, str):
            return None
        limit = _FIELDS[name]
        # CharField trims, refuses blanks, NUL and surrogates, and counts after trimming.
        if (
            not value
            or (limit is not None and len(value) > limit)
            or not value.isascii()
            or not value.isprintable()
            or value != value.strip()
        ):
            return None
    return cast(dict[str, Any], data)
