"""Websocket connects, frames and disconnects counted and timed for every websocket
route, with no code in the app (DESIGN.md §7), and the traffic guard on frames.

wechat_core.asgi hands each connection's `receive` and `send` through one
`WatchedSocket`: a slotted object of a few hundred bytes, the only thing kept
per connection (idle links stay cheap: no task, no buffer, no copy of the scope).

- connect: counted when the app accepts (`outcome=accepted`) or closes before
  accepting (`refused`); the open-websockets gauge moves with accept and end.
- frames: the type is read from the text's `"type"` field without parsing the
  JSON (bounded like every label); a frame's duration runs from its arrival until
  the app asks for the next event (apps handle frames one at a time); its
  outcome is `error` when the app answered with an error frame meanwhile,
  `throttled` for a throttle frame, else `ok`.
- disconnect: by close code (bounded), with the connection's lifetime.

Client version and platform come from the verified ticket the app leaves in
`scope["auth"]` (as Django's request.auth), `none` before.

Traffic guard: a frame equal to this client's previous one on the same type
(ids aside), or answered by an error, makes no progress; past the limit the
client is blocked, gets a `throttle` frame (tier 2, reason traffic_guard) and
the link closes with 4029. A blocked client that reconnects is told the same
right after the handshake.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async  # type: ignore[import-untyped]
from django.conf import settings

from accounts.types import VerifiedTicket
from monitoring.guard import GUARD_REFUSED, blocked_for, guard_count, guard_escalate
from monitoring.metrics import client_version_label, counter, gauge, histogram

CLOSE_GUARD = 4029  # stop connecting for `retry_after` seconds

WS_CONNECTS = counter(
    "websocket_connects_total",
    "Websocket handshakes by route, outcome and client.",
    ["route", "outcome", "client_version", "platform"],
    process_labels=True,
)
WS_OPEN = gauge(
    "websocket_open_connections", "Open websockets (summed over processes).", ["route"],
    process_labels=True,
)  # fmt: skip
WS_FRAMES = counter(
    "websocket_frames_total",
    "Websocket frames received, by route, frame type, outcome and client.",
    ["route", "frame", "outcome", "client_version", "platform"],
    process_labels=True,
)
WS_FRAME_DURATION = histogram(
    "websocket_frame_duration_seconds",
    "Time to handle a websocket frame.",
    ["route", "frame"],
    process_labels=True,
)
WS_DISCONNECTS = counter(
    "websocket_disconnects_total", "Websockets ended, by close code.", ["route", "code"],
    process_labels=True,
)  # fmt: skip
WS_LIFETIME = histogram(
    "websocket_connection_seconds",
    "How long websockets stayed open.",
    ["route"],
    buckets=(1, 10, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600),
    process_labels=True,
)
_TYPE = re.compile(rb'"type"\s*:\s*"([a-z][a-z0-9._]{0,31})"')
_ID = re.compile(rb'"id"\s*:\s*(?:"[^"]{0,64}"|\d{1,20}|null)\s*,?')
_KNOWN_CODES = {"1000", "1001", "1005", "1006", "1011", "4001", "4008", "4029"}

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _labels(scope: dict[str, Any]) -> tuple[str, str]:
    ticket = scope.get("auth")
    if isinstance(ticket, VerifiedTicket):
        return client_version_label(ticket.client_version), ticket.platform or "none"
    return "none", "none"


def _identity(scope: dict[str, Any]) -> str:
    ticket = scope.get("auth")
    if isinstance(ticket, VerifiedTicket):
        return f"device:{ticket.device_id}"
    client = scope.get("client") or ("unknown", 0)
    return f"ip:{client[0]}"


def _as_bytes(event: dict[str, Any]) -> bytes:
    text = event.get("text")
    return text.encode() if isinstance(text, str) else (event.get("bytes") or b"")


class WatchedSocket:
    __slots__ = (
        "_frame",
        "_frame_at",
        "_last",
        "_receive",
        "_send",
        "accepted",
        "closed",
        "opened_at",
        "route",
        "scope",
    )  # fmt: skip

    def __init__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        self.scope, self.route = scope, scope["path"]
        self._receive, self._send = receive, send
        self.accepted = self.closed = False
        self.opened_at = 0.0
        self._frame: bytes | None = None  # the frame being handled, and its outcome
        self._frame_at = 0.0
        self._last = ""  # "", "error" or "throttle": what the app answered meanwhile

    async def receive(self) -> dict[str, Any]:
        if self._frame is not None:
            await self._frame_done()
        event = await self._receive()
        kind = event["type"]
        if kind == "websocket.receive" and not self.closed:
            self._frame, self._frame_at, self._last = _as_bytes(event), time.perf_counter(), ""
        elif kind == "websocket.disconnect":
            self._ended(str(event.get("code", 1005)))
        return event

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if self.closed:
            return  # the guard closed the link; the app finds out on its next receive
        if kind == "websocket.accept":
            if await self._refuse_blocked(message):
                return
            self.accepted, self.opened_at = True, time.monotonic()
            version, platform = _labels(self.scope)
            WS_CONNECTS.inc(self.route, "accepted", version, platform)
            WS_OPEN.inc(self.route)
        elif kind == "websocket.send" and self._frame is not None:
            text = message.get("text") or ""
            if text.startswith('{"type":"error"'):
                self._last = "error"
            elif text.startswith('{"type":"throttle"'):
                self._last = "throttle"
        elif kind == "websocket.close":
            if not self.accepted:
                version, platform = _labels(self.scope)
                WS_CONNECTS.inc(self.route, "refused", version, platform)
            self._ended(str(message.get("code", 1000)))
        await self._send(message)

    async def _frame_done(self) -> None:
        raw, self._frame = self._frame or b"", None
        match = _TYPE.search(raw, 0, 200)
        frame = match[1].decode() if match else "unknown"
        outcome = {"error": "error", "throttle": "throttled"}.get(self._last, "ok")
        version, platform = _labels(self.scope)
        WS_FRAMES.inc(self.route, frame, outcome, version, platform)
        WS_FRAME_DURATION.observe(self.route, frame, value=time.perf_counter() - self._frame_at)
        if not settings.MONITORING_GUARD_ENABLED or self.closed:
            return
        fingerprint = int.from_bytes(
            hashlib.blake2b(_ID.sub(b"", raw, count=1), digest_size=8).digest(), "big"
        )
        identity = _identity(self.scope)
        repeats = guard_count(identity, f"ws {frame}", fingerprint, failed=outcome == "error")
        if repeats:
            seconds = await database_sync_to_async(guard_escalate, thread_sensitive=False)(
                identity, f"ws {frame}", repeats
            )
            if seconds:
                await self._stop_client(seconds)

    async def _refuse_blocked(self, accept: dict[str, Any]) -> bool:
        if not settings.MONITORING_GUARD_ENABLED:
            return False
        seconds = await database_sync_to_async(blocked_for, thread_sensitive=False)(
            _identity(self.scope)
        )
        if not seconds:
            return False
        GUARD_REFUSED.inc("websocket")
        await self._send(accept)
        await self._stop_client(seconds)
        return True

    async def _stop_client(self, seconds: float) -> None:
        retry_after = max(1, int(seconds + 0.999))
        frame = (
            f'{{"type":"throttle","id":null,"tier":2,"retry_after":{retry_after},'
            f'"reason":"traffic_guard"}}'
        )
        try:
            await self._send({"type": "websocket.send", "text": frame})
            await self._send({"type": "websocket.close", "code": CLOSE_GUARD})
        except Exception:  # noqa: S110 - the client is gone already
            pass
        self._ended(str(CLOSE_GUARD))

    def _ended(self, code: str) -> None:
        if self.closed:
            return
        self.closed = True
        if self.accepted:
            WS_OPEN.dec(self.route)
            WS_LIFETIME.observe(self.route, value=time.monotonic() - self.opened_at)
        WS_DISCONNECTS.inc(self.route, code if code in _KNOWN_CODES else "other")


async def watched(app: Callable[..., Awaitable[None]], scope: dict[str, Any], receive: Receive,
                  send: Send) -> None:  # fmt: skip
    """Run the websocket app with this connection measured."""
    if not settings.MONITORING_ENABLED:
        await app(scope, receive, send)
        return
    socket = WatchedSocket(scope, receive, send)
    try:
        await app(scope, socket.receive, socket.send)
    finally:
        socket._ended("1006")  # no close seen: the connection just went away
