"""What blocking a campus does to traffic (seed 000, 三园区容灾; issue 13).

Three campuses serve at once; an operator blocks one with the audited switch
(wechat_core.services.campus_set_blocked, the admin, `dr_drill`). Every ASGI
process learns it within CAMPUS_WATCH_SECONDS (plus SHARED_STATE_POLL_SECONDS)
from a watcher task of its own, and then, when the blocked campus is its own:

- every open websocket of the process gets a `move` frame (the endpoints of
  the campuses still open, the reason, the retry policy) and is closed with
  CLOSE_MOVED; clients reconnect there and resume from their sync key;
- a new websocket is accepted only to get the same `move` frame and close;
- an HTTP request is answered 503 `{"code": "campus_blocked", "endpoints"}`,
  except operators' pages (so the switch can be flipped back from there).

Unblocking lets connections in again at once. The server's own calls to
another campus choose among `usable_endpoints`, which leaves out the endpoints
of blocked campuses and instances its breakers ejected (wechat_core.breakers):
today those are the DR drill's synthetic clients (drills.services), whose links
count against the breakers of CAMPUS_SERVICE.

The gate sits in the ASGI entry point (wechat_core.asgi): the check on a
request is one attribute read; the topology is read by the watcher only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from wechat_core import breakers
from wechat_core.metrics import counter
from wechat_core.types import CampusState

logger = logging.getLogger(__name__)

# The breakers' service name for the server's own links to campuses' access
# endpoints (the DR drill's synthetic clients): what `usable_endpoints` is given.
CAMPUS_SERVICE = "campus"
CLOSE_MOVED = 4010  # the campus was blocked: reconnect to the `move` frame's endpoints
MOVE_REASON = "campus_blocked"
BLOCKED_MESSAGE = "This campus is blocked; connect to one of `endpoints`."
SUBPROTOCOL = "wechat.sync.v1"

CAMPUS_MOVES = counter(
    "campus_moves_total",
    "Websocket connections told to move to another campus (open ones when their campus "
    "was blocked, new ones refused there), by campus and when.",
    ["campus", "when"],
    process_labels=True,
)
CAMPUS_REFUSED_HTTP = counter(
    "campus_refused_requests_total",
    "HTTP requests refused because their campus is blocked.",
    ["campus"],
    process_labels=True,
)

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class LocalState:
    blocked: bool = False
    endpoints: tuple[str, ...] = ()  # of the open campuses, this data centre's first


def endpoints_elsewhere(campuses: Iterable[CampusState], here: str) -> tuple[str, ...]:
    """Access endpoints of the unblocked campuses other than `here`, those of the
    same data centre first (a client's home data centre is where its writes go)."""
    listed = list(campuses)
    home = next((c.datacenter for c in listed if c.code == here), None)
    open_ones = [c for c in listed if not c.blocked and c.code != here]
    open_ones.sort(key=lambda c: (c.datacenter != home, c.code))
    seen: dict[str, None] = {}
    for campus in open_ones:
        for url in campus.endpoints:
            seen.setdefault(url, None)
    return tuple(seen)


def move_frame(endpoints: Iterable[str]) -> dict[str, Any]:
    """The `move` frame (docs/protocol.md): where to go, why, and how to get there."""
    return {
        "type": "move",
        "reason": MOVE_REASON,
        "campus": settings.CAMPUS,
        "endpoints": list(endpoints),
        "retry": {
            "spread_seconds": settings.CAMPUS_MOVE_SPREAD_SECONDS,
            "resume": "sync_key",
        },
    }


def usable_endpoints(service: str, urls: Iterable[str]) -> list[str]:
    """Of `urls` (another campus's endpoints, in order of preference), those the
    server's own calls may use: not in a blocked campus, not ejected by this
    process's breakers for `service`."""
    from wechat_core.selectors import campus_list

    blocked = {
        breakers.instance_of(url)
        for campus in campus_list()
        if campus.blocked
        for url in campus.endpoints
    }
    return [
        url
        for url in urls
        if breakers.instance_of(url) not in blocked
        and not breakers.ejected(service, breakers.instance_of(url))
    ]


def _read_local() -> LocalState:
    from wechat_core.selectors import campus_snapshot

    campuses = campus_snapshot.get()
    here = campuses.get(settings.CAMPUS)
    return LocalState(
        blocked=bool(here and here.blocked),
        endpoints=endpoints_elsewhere(campuses.values(), settings.CAMPUS),
    )


@dataclass(eq=False)
class _Socket:
    send: Send
    accepted: bool = False
    moved: bool = False
    subprotocol: str | None = None


@dataclass
class CampusGate:
    """One per process: the campus's state as the watcher last read it, and the
    open websockets it may have to move."""

    state: LocalState = LocalState()
    sockets: set[_Socket] = field(default_factory=set)
    _watcher: asyncio.Task[None] | None = None

    def ensure_watching(self) -> None:
        if not settings.CAMPUS_WATCH_SECONDS:
            return
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        from channels.db import database_sync_to_async  # type: ignore[import-untyped]

        read = database_sync_to_async(_read_local, thread_sensitive=False)
        while True:
            try:
                state = await read()
            except Exception:
                logger.warning("campus state unreadable; keeping the last one", exc_info=True)
            else:
                await self.apply(state)
            await asyncio.sleep(settings.CAMPUS_WATCH_SECONDS)

    async def apply(self, state: LocalState) -> None:
        was_blocked, self.state = self.state.blocked, state
        if state.blocked and not was_blocked:
            logger.warning("campus %s blocked: moving %d links", settings.CAMPUS, len(self.sockets))
        if state.blocked:
            for socket in [s for s in self.sockets if s.accepted and not s.moved]:
                await self._move(socket, "open")

    async def _move(self, socket: _Socket, when: str) -> None:
        socket.moved = True
        self.sockets.discard(socket)
        CAMPUS_MOVES.inc(settings.CAMPUS, when)
        frame = json.dumps(move_frame(self.state.endpoints), separators=(",", ":"))
        try:
            await socket.send({"type": "websocket.send", "text": frame})
            await socket.send({"type": "websocket.close", "code": CLOSE_MOVED})
        except Exception:  # the client left meanwhile
            logger.debug("move after the client left", exc_info=True)

    # --- ASGI ---------------------------------------------------------------------------

    async def websocket(
        self, scope: dict[str, Any], receive: Receive, send: Send, app: App
    ) -> None:
        self.ensure_watching()
        if self.state.blocked:
            await self._refuse_websocket(scope, receive, send)
            return
        socket = _Socket(send)

        async def guarded_send(message: dict[str, Any]) -> None:
            if socket.moved:
                return  # the gate closed it: the app's late frames go nowhere
            if message["type"] == "websocket.accept":
                socket.accepted = True
            await send(message)

        self.sockets.add(socket)
        try:
            await app(scope, receive, guarded_send)
        finally:
            self.sockets.discard(socket)

    async def _refuse_websocket(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        # Browsers fail a handshake that selects none of the subprotocols they offered.
        offered = SUBPROTOCOL in scope.get("subprotocols", ())
        await send({"type": "websocket.accept", "subprotocol": SUBPROTOCOL if offered else None})
        await self._move(_Socket(send, accepted=True), "connect")

    async def http(self, scope: dict[str, Any], receive: Receive, send: Send, app: App) -> None:
        self.ensure_watching()
        if self.state.blocked and not _operators(scope["path"]):
            CAMPUS_REFUSED_HTTP.inc(settings.CAMPUS)
            await _refuse_http(send, self.state.endpoints)
            return
        await app(scope, receive, send)


def _operators(path: str) -> bool:
    from wechat_core.admission.http import route_of_path
    from wechat_core.admission.priorities import Business

    return route_of_path(path)[0] == Business.OPERATOR


async def _refuse_http(send: Send, endpoints: tuple[str, ...]) -> None:
    spread = settings.CAMPUS_MOVE_SPREAD_SECONDS
    body = json.dumps(
        {
            "code": MOVE_REASON,
            "message": BLOCKED_MESSAGE,
            "campus": settings.CAMPUS,
            "endpoints": list(endpoints),
            "details": {"campus": settings.CAMPUS, "endpoints": list(endpoints)},
        }
    ).encode()
    retry_after = max(1, round(spread * random.random()))  # noqa: S311 - jitter, not a secret
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_gate = CampusGate()


def gate() -> CampusGate:
    return _gate


class CampusGateASGI:
    """Wraps the HTTP application (the websocket side calls `gate().websocket`)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _gate.http(scope, receive, send, self.app)
