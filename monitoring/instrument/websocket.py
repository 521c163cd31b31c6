"""Websocket connects, frames and disconnects counted and timed for every websocket
route, with no code in the app (DESIGN.md §7), and the traffic guard on
handshakes and frames.

wechat_core.asgi hands each connection's `receive` and `send` through one
`WatchedSocket` (`watch`), the only thing kept per connection. An idle link may
stay open for hours, so it holds no task, no buffer, no copy of the scope or of
a frame: a slotted object of nine references, its two bound methods, one float
and the suspended `receive` (about 500 bytes in all, docs/performance.md);
between frames every other slot points at a shared constant.

- connect: counted when the app accepts (`outcome=accepted`) or closes before
  accepting (`refused`); the open-websockets gauge moves with accept and end.
- frames: the type is read from the text's `"type"` field without parsing the
  JSON (bounded like every label) when the frame arrives, and the frame itself
  is not kept; its duration runs from its arrival until the app asks for the
  next event (apps handle frames one at a time); its outcome is `error` when the
  app answered with an error frame meanwhile, `throttled` for a throttle frame,
  else `ok`.
- disconnect: by close code (bounded), with the connection's lifetime.

Client version and platform come from the verified ticket the app leaves in
`scope["auth"]` (as Django's request.auth), `none` before.

Traffic guard (monitoring.trafficguard): a frame equal to this client's previous one
of the same type and answered the same way (ids aside, in both), or answered by
an error, makes no progress, and so does every handshake after the first in a
minute (a reconnect loop); past the limit the client is blocked, gets a
`throttle` frame (tier 2, reason traffic_guard) and the link closes with 4029.
A blocked client that reconnects is told the same right after the handshake.
The answer counts as HTTP's body does: the same `sync` frame that returns new
entries this time is progress (docs/protocol.md §6a). Notifies written while a
frame is handled are not its answer.
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
from monitoring.trafficguard import GUARD_REFUSED, blocked_for, guard_count, guard_escalate
from wechat_core.api.request import scope_client_ip
from wechat_core.metrics import client_version_label, counter, gauge, histogram

CLOSE_GUARD = 4029  # stop connecting for `retry_after` seconds
CONNECT_ENDPOINT = "ws connect"  # the guard's endpoint for handshakes

WS_CONNECTS = counter(
    "websocket_connects_total",
    "Websocket handshakes by route, outcome and client.",
    ["route", "outcome", "client_version", "platform"],
    process_labels=True,
)
WS_OPEN = gauge(
    "websocket_open_connections",
    "Open websockets (summed over processes).",
    ["route"],
    process_labels=True,
)
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
    "websocket_disconnects_total",
    "Websockets ended, by close code.",
    ["route", "code"],
    process_labels=True,
)
WS_LIFETIME = histogram(
    "websocket_connection_seconds",
    "How long websockets stayed open.",
    ["route"],
    buckets=(1, 10, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600),
    process_labels=True,
)
_TYPE = re.compile(r'"type"\s*:\s*"([a-z][a-z0-9._]{0,31})"')
_ID = re.compile(rb'"id"\s*:\s*(?:"[^"]{0,64}"|\d{1,20}|null)\s*,?')
_KNOWN_CODES = {"1000", "1001", "1005", "1006", "1011", "4001", "4008", "4029"}
# What the app answered while a frame was being handled.
_OK, _ERROR, _THROTTLED = "ok", "error", "throttled"

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
    return f"ip:{scope_client_ip(scope) or 'unknown'}"


def _frame_type(event: dict[str, Any]) -> str:
    text = event.get("text")
    if isinstance(text, str):
        match = _TYPE.search(text, 0, 200)
    else:
        match = _TYPE.search((event.get("bytes") or b"")[:200].decode("latin-1"))
    return WS_FRAMES.bounded("frame", match[1] if match else "unknown")


def _fingerprint(event: dict[str, Any]) -> int:
    """The frame without its request id, hashed: equal frames make no progress."""
    text = event.get("text")
    raw = text.encode() if isinstance(text, str) else (event.get("bytes") or b"")
    return _hash(_ID.sub(b"", raw, count=1))


def _with_answer(fingerprint: int, text: str) -> int:
    """The fingerprint of a frame and what it was answered so far: the answer
    without its request id (the first `"id"` of an answer frame, after its type)."""
    answer = _ID.sub(b"", text.encode("utf-8", "surrogatepass"), count=1)
    return _hash(fingerprint.to_bytes(8, "big") + answer)


def _hash(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def _admit(identity: str) -> float:
    """In a thread, at the handshake: seconds the client must stay away (0: welcome).
    A blocked client is refused; a handshake is counted as a possible loop."""
    seconds = blocked_for(identity)
    if seconds:
        GUARD_REFUSED.inc("websocket")
        return seconds
    repeats = guard_count(identity, CONNECT_ENDPOINT, 0, failed=False)
    return guard_escalate(identity, CONNECT_ENDPOINT, repeats) if repeats else 0.0


class WatchedSocket:
    __slots__ = (
        "_answer",
        "_fingerprint",
        "_frame",
        "_frame_at",
        "_receive",
        "_send",
        "opened_at",
        "scope",
        "state",
    )

    # `state`: where the connection is in its life.
    CONNECTING, OPEN, CLOSED = 0, 1, 2

    def __init__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive, self._send = receive, send
        self.state = self.CONNECTING
        self.opened_at = 0.0
        self._frame: str | None = None  # the type of the frame being handled
        self._frame_at = 0.0
        self._fingerprint = 0
        self._answer = _OK  # what the app answered it with so far

    @property
    def closed(self) -> bool:
        return self.state == self.CLOSED

    async def receive(self) -> dict[str, Any]:
        if self._frame is not None:
            await self._frame_done()
        event = await self._receive()
        kind = event["type"]
        if kind == "websocket.receive" and not self.closed:
            self._frame, self._frame_at, self._answer = _frame_type(event), time.perf_counter(), _OK
            if settings.MONITORING_GUARD_ENABLED:
                self._fingerprint = _fingerprint(event)
        elif kind == "websocket.disconnect":
            self._ended(str(event.get("code", 1005)))
        return event

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if self.closed:
            return  # the guard closed the link; the app finds out on its next receive
        if kind == "websocket.accept":
            if await self._refuse_looping(message):
                return
            self.state, self.opened_at = self.OPEN, time.monotonic()
            version, platform = _labels(self.scope)
            WS_CONNECTS.inc(self.route, "accepted", version, platform)
            WS_OPEN.inc(self.route)
        elif kind == "websocket.send" and self._frame is not None:
            text = message.get("text") or ""
            if text.startswith('{"type":"error"'):
                self._answer = _ERROR
            elif text.startswith('{"type":"throttle"'):
                self._answer = _THROTTLED
            if settings.MONITORING_GUARD_ENABLED and not text.startswith('{"type":"notify"'):
                self._fingerprint = _with_answer(self._fingerprint, text)
        elif kind == "websocket.close":
            if self.state == self.CONNECTING:
                version, platform = _labels(self.scope)
                WS_CONNECTS.inc(self.route, "refused", version, platform)
            self._ended(str(message.get("code", 1000)))
        await self._send(message)

    @property
    def route(self) -> str:
        return str(self.scope["path"])

    async def _frame_done(self) -> None:
        frame, outcome, self._frame = self._frame or "unknown", self._answer, None
        version, platform = _labels(self.scope)
        WS_FRAMES.inc(self.route, frame, outcome, version, platform)
        WS_FRAME_DURATION.observe(self.route, frame, value=time.perf_counter() - self._frame_at)
        fingerprint, self._fingerprint, self._frame_at = self._fingerprint, 0, 0.0
        if not settings.MONITORING_GUARD_ENABLED or self.closed:
            return
        identity, endpoint = _identity(self.scope), f"ws {frame}"
        repeats = guard_count(identity, endpoint, fingerprint, failed=outcome == _ERROR)
        if repeats:
            seconds = await database_sync_to_async(guard_escalate, thread_sensitive=False)(
                identity, endpoint, repeats
            )
            if seconds:
                await self._stop_client(seconds)

    async def _refuse_looping(self, accept: dict[str, Any]) -> bool:
        """A blocked client, or one whose reconnects just passed the limit, gets the
        handshake, the throttle frame and close 4029."""
        if not settings.MONITORING_GUARD_ENABLED:
            return False
        seconds = await database_sync_to_async(_admit, thread_sensitive=False)(
            _identity(self.scope)
        )
        if not seconds:
            return False
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

    def gone(self) -> None:
        """The app returned: if no close was seen, the connection just went away."""
        self._ended("1006")

    def _ended(self, code: str) -> None:
        if self.closed:
            return
        if self.state == self.OPEN:
            WS_OPEN.dec(self.route)
            WS_LIFETIME.observe(self.route, value=time.monotonic() - self.opened_at)
        self.state = self.CLOSED
        WS_DISCONNECTS.inc(self.route, code if code in _KNOWN_CODES else "other")


def watch(scope: dict[str, Any], receive: Receive, send: Send) -> WatchedSocket | None:
    """The measuring wrapper of one connection (None when monitoring is off). The
    caller runs the app with its `receive` and `send`, and calls `gone()` when
    the app returns: a coroutine of ours around the app would be one more frame
    kept for every open link."""
    return WatchedSocket(scope, receive, send) if settings.MONITORING_ENABLED else None
