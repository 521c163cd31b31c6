"""A Python client of the SYNC protocol, with Mars-style link management (seed 002).

    async with ChatClient(["ws://127.0.0.1:8000/ws/sync"], ticket) as client:
        await client.send(conversation_id, {"kind": "text", "text": "hi"})
        entry = await client.entries.get()

What it does, as docs/protocol.md asks of every client:
- keeps one long link; heartbeats at the interval the server suggests;
- on a dropped link, reconnects with exponential backoff and jitter, trying each
  access endpoint in turn (failover) before backing off;
- resumes from its sync key: after a reconnect it syncs from the last seq it
  holds, so it never misses an entry and never applies one twice;
- sends through an outbox: each message keeps its client_msg_id until acked,
  and is resent on every reconnect and, after a pause, when answered
  server_error (it may be stored already; the server answers a repeat with the
  original ack);
- obeys throttle frames: no send leaves before `retry_after` has passed, and after
  any tier-2 throttle (the traffic guard's, closing the link with 4029, or
  FastReject's answer to a send or a sync) it does not reconnect before then; a
  refused sync (`reason: "overloaded"`, FastReject) is asked again after
  `retry_after` plus up to half as much jitter, and a connection refused as
  overloaded (a `throttle` frame, then close 4013) is not tried again anywhere
  before then (2 s if the close came without the frame, a minute for 4029); the
  tier of hello and heartbeat answers is kept (`client.tier`; a refusal's tier lasts
  its wait, `current_tier()`), and above 0 receipts pause
  (the client slows down before the server refuses it, docs/overload.md);
- reports delivery receipts: every message from someone else is reported once,
  within a second, with how long ago it was shown (`receipt` frame), so the
  server can measure end-to-end delay.
- follows `move` frames (its campus was blocked, docs/protocol.md): puts the
  frame's endpoints first, reconnects to them after a random pause within the
  frame's `retry.spread_seconds`, and resumes from its sync key;
- follows `home` frames (the user's home is another data centre, docs/protocol.md
  §2b): the home's endpoints replace ours, and it reconnects there at once with
  the same ticket, resuming from its sync key; `login` follows HTTP 421
  `home_elsewhere` the same way, logging in at the home's first endpoint;
- keeps the device's feature flags (gray release): the snapshot of every hello,
  then `flag` entries, the highest revision of each feature winning
  (`client.flag_enabled("web.chat_search")`).

Used by the tests, the benchmarks and the `chat` management command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection, connect

logger = logging.getLogger(__name__)

SUBPROTOCOL = "wechat.sync.v1"
HOME_ELSEWHERE_STATUS = 421  # the user's home is another data centre (docs/protocol.md §2b)
# A refused connection whose throttle frame was lost still means "stay away", for
# as long as docs/protocol.md §2 and §6 say: 4013 overloaded, 4029 the traffic guard.
CLOSE_OVERLOADED = 4013
CLOSE_GUARD = 4029
PAUSE_WITHOUT_FRAME = {CLOSE_OVERLOADED: 2.0, CLOSE_GUARD: 60.0}


class ServerError(Exception):
    """An error frame answering one of our requests."""

    def __init__(self, frame: dict[str, Any]) -> None:
        self.code = str(frame.get("code"))
        self.details = frame.get("details") or {}
        super().__init__(f"{self.code}: {frame.get('message')}")


class TicketRejected(ServerError):
    """The server refused the ticket: log in again; reconnecting will not help."""


@dataclass
class Backoff:
    """Exponential backoff with full jitter, reset when a link comes up."""

    base: float = 0.2
    cap: float = 10.0
    attempt: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return random.uniform(0, delay)  # noqa: S311 - jitter, not security

    def reset(self) -> None:
        self.attempt = 0


class EndpointShield:
    """What a client that is part of the server (the DR drill's synthetic users) asks
    before using an endpoint, and tells after trying one: drills.services backs it
    with the breakers of wechat_core.breakers. A plain client has none."""

    def usable(self, url: str) -> bool:
        return True

    def report(self, url: str, *, ok: bool) -> None:
        return None


@dataclass
class _Pending:
    conversation: int
    client_msg_id: str
    content: dict[str, Any]
    future: asyncio.Future[dict[str, Any]] = field(default_factory=asyncio.Future)
    attempts: int = 0  # answered server_error so far


class ChatClient:
    def __init__(
        self,
        endpoints: list[str],
        ticket: str,
        *,
        key: int = 0,
        sync_limit: int = 500,
        on_key: Callable[[int], None] | None = None,
        backoff: Backoff | None = None,
        flags: dict[str, dict[str, Any]] | None = None,
        shield: EndpointShield | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("At least one endpoint is needed.")
        self.endpoints = list(endpoints)
        self.ticket = ticket
        self.key = key
        self.sync_limit = sync_limit
        self.on_key = on_key
        self.backoff = backoff or Backoff()
        self.entries: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.conversations: dict[int, dict[str, Any]] = {}
        self.connected = asyncio.Event()
        self.user_id: int | None = None
        self.device_id: int | None = None
        # Feature key → {"enabled", "revision"} (the login answer's, then the server's).
        self.flags: dict[str, dict[str, Any]] = dict(flags or {})
        self.heartbeat_interval = 30.0
        self.throttled_until = 0.0
        self.tier = (
            0  # the server's throttle tier in its last admitted answer (hello, heartbeat.ack)
        )
        self.refusal_tier = 0  # the last refusal's (throttle frames): holds until throttled_until
        self.stopped_until = 0.0  # tier-2 throttle, refused connection: no reconnect before this
        self.receipts = True
        self._shown: list[tuple[int, float]] = []  # (message id, when queued), to report
        self.connects = 0
        self.moves = 0  # move frames followed
        self.homes = 0  # home frames followed (sent to the user's home data centre)
        self._move_spread: float | None = None  # set by a move frame until the reconnect
        self._endpoint_index = 0
        self.shield = shield
        self._link: ClientConnection | None = None
        self._requests: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._outbox: dict[str, _Pending] = {}
        self._sync_wanted = asyncio.Event()
        self._announced = 0  # the highest seq the server announced (notify, heartbeat, hello)
        self._tasks: list[asyncio.Task[None]] = []
        self._transmits: set[asyncio.Task[None]] = set()
        self._closed = False
        self.fatal: ServerError | None = None

    async def __aenter__(self) -> ChatClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self, *, wait: bool = True, timeout: float = 10.0) -> None:
        self._tasks = [
            asyncio.create_task(self._run_link()),
            asyncio.create_task(self._run_sync()),
            asyncio.create_task(self._run_receipts()),
        ]
        if wait:
            await asyncio.wait_for(self.connected.wait(), timeout)

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._link is not None:
            await self._link.close()

    async def drop_link(self) -> None:
        """Break the current link as a lost network would (tests and drills)."""
        if self._link is not None:
            await self._link.close()

    # --- Sending ---------------------------------------------------------------------

    async def send(
        self,
        conversation: int,
        content: dict[str, Any],
        *,
        client_msg_id: str | None = None,
        timeout: float | None = 30.0,
    ) -> dict[str, Any]:
        """Send through the outbox; returns the server's ack (`send.ack` message part).
        Survives reconnects: the message is resent until acked."""
        pending = _Pending(conversation, client_msg_id or uuid.uuid4().hex, content)
        self._outbox[pending.client_msg_id] = pending
        if self.connected.is_set():
            self._transmit(pending)
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), timeout)
        finally:
            if pending.future.done():
                self._outbox.pop(pending.client_msg_id, None)

    def _transmit(self, pending: _Pending) -> None:
        task = asyncio.create_task(self._transmit_when_allowed(pending))
        self._transmits.add(task)
        task.add_done_callback(self._transmits.discard)

    async def _transmit_when_allowed(self, pending: _Pending) -> None:
        wait = self.throttled_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = {
            "type": "send",
            "conversation": pending.conversation,
            "client_msg_id": pending.client_msg_id,
            "content": pending.content,
        }
        try:
            reply = await self.request(frame)
        except (TimeoutError, ConnectionError, websockets.ConnectionClosed):
            return  # resent after the reconnect
        except ServerError as error:
            if error.code == "server_error" and not self._closed:
                # It may be stored already: the same id again after a pause (§4).
                pending.attempts += 1
                await asyncio.sleep(min(10.0, 0.5 * 2 ** min(pending.attempts, 5)))
                self._transmit(pending)
            elif not pending.future.done():
                pending.future.set_exception(error)
            return
        if reply.get("type") == "throttle":
            self._obey(reply)
            self._transmit(pending)
            return
        if not pending.future.done():
            pending.future.set_result(reply["message"])

    def _backoff_for(self, throttle: dict[str, Any]) -> float:
        """Seconds to wait after a throttle frame: its retry_after, and for an overloaded
        server up to half as much again at random, so refused clients do not all
        come back at once."""
        seconds = float(throttle.get("retry_after", 1))
        if throttle.get("reason") == "overloaded":
            seconds *= 1 + random.random() / 2  # noqa: S311 - jitter, not a secret
        return seconds

    def _obey(self, throttle: dict[str, Any], *, refused_connection: bool = False) -> float:
        """Hold sends for a throttle's wait and, for a tier 2 or a refused connection,
        reconnects too (to any endpoint: the server shed us, not one socket). Returns
        the wait in seconds."""
        seconds = self._backoff_for(throttle)
        now = time.monotonic()
        until = now + seconds
        still = self.refusal_tier if self.throttled_until > now else 0
        self.refusal_tier = max(still, int(throttle.get("tier", 1)))
        self.throttled_until = max(self.throttled_until, until)
        if refused_connection or int(throttle.get("tier", 1)) >= 2:
            self.stopped_until = max(self.stopped_until, until)
        return seconds

    def current_tier(self) -> int:
        """The server's tier as far as the client knows now: its last admitted answer's
        (hello, heartbeat.ack), or a refusal's while the refusal's wait lasts. A refused
        reconnect says tier 2 for its pause, not until the next heartbeat."""
        refused = self.refusal_tier if self.throttled_until > time.monotonic() else 0
        return max(self.tier, refused)

    def _refused_by_close(self, code: int | None) -> None:
        """A connection closed as refused (4013, 4029) without the throttle frame that
        says for how long: the documented pause all the same."""
        pause = PAUSE_WITHOUT_FRAME.get(code or 0)
        now = time.monotonic()
        if pause is None or self.stopped_until > now:
            return  # not a refusal, or its frame came and set the pause already
        if code == CLOSE_OVERLOADED:
            pause *= 1 + random.random() / 2  # noqa: S311 - jitter, not a secret
        self.stopped_until = now + pause

    async def request(self, frame: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """Send one frame on the current link and wait for the reply with its id."""
        link = self._link
        if link is None or not self.connected.is_set():
            raise ConnectionError("not connected")
        request_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._requests[request_id] = future
        try:
            await link.send(json.dumps({**frame, "id": request_id}))
            reply = await asyncio.wait_for(future, timeout)
        finally:
            self._requests.pop(request_id, None)
        if reply.get("type") == "error":
            raise ServerError(reply)
        return reply

    # --- The link ----------------------------------------------------------------------

    def _next_endpoint(self) -> str:
        count = len(self.endpoints)
        if self.shield is not None:
            # Skip endpoints the shield refuses (all refused: try them in turn anyway).
            for step in range(count):
                url = self.endpoints[(self._endpoint_index + step) % count]
                if self.shield.usable(url):
                    self._endpoint_index += step
                    return url
        return self.endpoints[self._endpoint_index % count]

    @property
    def current_endpoint(self) -> str:
        """The endpoint of the link (or of the next attempt)."""
        return self._next_endpoint()

    async def _run_link(self) -> None:
        failures_this_round = 0
        while not self._closed:
            # The server told us to stay away (a refused connection, a tier 2): wait it
            # out, again if it grew meanwhile, before connecting anywhere.
            while (stopped := self.stopped_until - time.monotonic()) > 0:
                await asyncio.sleep(stopped)
            endpoint = self._next_endpoint()
            connects_before = self.connects
            try:
                async with connect(
                    endpoint,
                    subprotocols=[SUBPROTOCOL, f"ticket.{self.ticket}"],  # type: ignore[list-item]
                    open_timeout=5,
                    max_size=8 * 1024 * 1024,
                    ping_interval=None,
                ) as link:
                    failures_this_round = 0
                    await self._serve(link)
            except TicketRejected as rejected:
                self.fatal = rejected
                self.connected.clear()
                return
            except (TimeoutError, OSError, websockets.WebSocketException) as error:
                logger.debug("link to %s failed: %s", endpoint, error)
                if isinstance(error, websockets.ConnectionClosed) and error.rcvd is not None:
                    self._refused_by_close(error.rcvd.code)
                if self.shield is not None and self.connects == connects_before:
                    self.shield.report(endpoint, ok=False)  # no link was made there
            self.connected.clear()
            self._fail_requests()
            if self._closed:
                return
            if self._move_spread is not None:
                # Moved: the frame's first endpoint, after a pause that spreads
                # the moved clients' reconnects over the other campuses.
                spread, self._move_spread = self._move_spread, None
                self._endpoint_index = 0
                failures_this_round = 0
                await asyncio.sleep(random.uniform(0, spread))  # noqa: S311 - jitter
                continue
            # Failover: try the next endpoint at once; back off after a full round.
            self._endpoint_index += 1
            failures_this_round += 1
            if failures_this_round >= len(self.endpoints):
                failures_this_round = 0
                await asyncio.sleep(self.backoff.next_delay())

    async def _serve(self, link: ClientConnection) -> None:
        hello = json.loads(await asyncio.wait_for(link.recv(), 10))
        if hello.get("type") == "error":
            raise TicketRejected(hello)
        if hello.get("type") == "move":  # this campus is blocked: go elsewhere
            self._follow_move(hello)
            return
        if hello.get("type") == "home":  # the user's home is another data centre
            self._follow_home(hello)
            return
        if hello.get("type") == "throttle":  # refused as overloaded (close 4013)
            self._obey(hello, refused_connection=True)
            return
        self._link = link
        self.user_id = hello["user"]
        self.device_id = hello.get("device")
        if "flags" in hello:
            self.apply_flags(hello["flags"])
        self.heartbeat_interval = float(hello.get("heartbeat", 30))
        self.tier = int(hello.get("tier", 0))  # admitted: how busy the server is now
        self.connects += 1
        if self.shield is not None:
            self.shield.report(self._next_endpoint(), ok=True)
        self.backoff.reset()
        self.connected.set()
        self._announce(int(hello.get("max_seq", 0)))
        self._sync_wanted.set()
        for pending in list(self._outbox.values()):
            if not pending.future.done():
                self._transmit(pending)
        heartbeat = asyncio.create_task(self._heartbeat(link))
        try:
            async for raw in link:
                self._dispatch(json.loads(raw))
        finally:
            heartbeat.cancel()
            self._link = None

    def _dispatch(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "notify":
            self._announce(int(frame["seq"]))
            return
        if kind == "move":
            self._follow_move(frame)
            return
        if kind == "error" and frame.get("code") in ("ticket_revoked", "ticket_expired"):
            self.fatal = TicketRejected(frame)
        if kind == "throttle" and frame.get("id") is None:
            self._obey(frame)  # tier 2 (the traffic guard, closing with 4029): no reconnect
            return
        future = self._requests.get(str(frame.get("id")))
        if future is not None and not future.done():
            future.set_result(frame)

    async def _heartbeat(self, link: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            with contextlib.suppress(Exception):
                reply = await self.request({"type": "heartbeat"}, timeout=self.heartbeat_interval)
                self.tier = int(reply.get("tier", 0))
                self.heartbeat_interval = float(reply.get("interval", self.heartbeat_interval))
                self._announce(int(reply.get("max_seq", 0)))  # above the key: a notify was lost

    def _follow_move(self, frame: dict[str, Any]) -> None:
        """The campus of this link is blocked: the frame's endpoints first, ours after
        (a blocked campus answers every link with another move, so it is only
        used again once unblocked)."""
        offered = [str(url) for url in frame.get("endpoints") or [] if isinstance(url, str)]
        self.endpoints = offered + [url for url in self.endpoints if url not in offered]
        self.moves += 1
        retry = frame.get("retry") or {}
        self._move_spread = max(0.0, min(30.0, float(retry.get("spread_seconds", 1.0))))
        logger.info("moving: campus %s blocked, to %s", frame.get("campus"), offered[:1])

    def _follow_home(self, frame: dict[str, Any]) -> None:
        """This data centre is not the user's home: its endpoints only, from now on
        (a ticket is good at home alone), reconnecting at once."""
        offered = [str(url) for url in frame.get("endpoints") or [] if isinstance(url, str)]
        if offered:
            self.endpoints = offered
        self.homes += 1
        self._move_spread = 0.0  # reconnect to the first of them without a pause
        logger.info("going home: data centre %s, %s", frame.get("datacenter"), offered[:1])

    def _fail_requests(self) -> None:
        for future in self._requests.values():
            if not future.done():
                future.set_exception(ConnectionError("link lost"))
        self._requests.clear()

    # --- Sync ---------------------------------------------------------------------------

    def _announce(self, seq: int) -> None:
        self._announced = max(self._announced, seq)
        if seq > self.key:
            self._sync_wanted.set()

    async def _run_sync(self) -> None:
        while not self._closed:
            await self._sync_wanted.wait()
            self._sync_wanted.clear()
            try:
                await self.sync_now()
            except (TimeoutError, ConnectionError, websockets.ConnectionClosed):
                continue  # the reconnect asks for a sync again
            except ServerError as error:
                logger.warning("sync refused: %s", error)
                continue
            if self._announced <= self.key:
                # Notifies that came in during the sync are covered by what it
                # returned: syncing for them again would fetch nothing (§4).
                self._sync_wanted.clear()

    async def sync_now(self) -> None:
        """Pull every entry after the key, page by page, and queue them in order."""
        while True:
            page = await self.request({"type": "sync", "key": self.key, "limit": self.sync_limit})
            if page.get("type") == "throttle":  # overloaded: ask again later
                await asyncio.sleep(self._obey(page))
                continue
            for cid, conversation in page.get("conversations", {}).items():
                self.conversations[int(cid)] = conversation
            for entry in page["entries"]:
                if entry["seq"] > self.key:  # never apply an entry twice
                    self.key = entry["seq"]
                    if entry["kind"] == "flag":
                        self.apply_flag_entry(entry.get("payload") or {})
                    self.entries.put_nowait(entry)
                    message = entry.get("message")
                    if message and message.get("sender") not in (None, self.user_id):
                        self._shown.append((int(message["id"]), time.monotonic()))
            self.key = max(self.key, int(page["key"]))
            if self.on_key is not None:
                self.on_key(self.key)
            if not page["more"]:
                return

    async def _run_receipts(self) -> None:
        """Report the messages handed to the application, about once a second."""
        while not self._closed:
            await asyncio.sleep(1.0)
            if not self._shown or not self.receipts or not self.connected.is_set():
                continue
            if self.current_tier() or self.stopped_until > time.monotonic():
                continue  # the server sheds load (or told us to stay away): receipts wait
            batch, self._shown = self._shown[:100], self._shown[100:]
            now = time.monotonic()
            shown = [{"id": mid, "shown_ago_ms": int((now - at) * 1000)} for mid, at in batch]
            try:
                reply = await self.request({"type": "receipt", "messages": shown}, timeout=10)
                if reply.get("type") == "throttle":  # refused: it did nothing, report again
                    self._obey(reply)
                    self._shown = batch + self._shown
            except (TimeoutError, ConnectionError, websockets.ConnectionClosed):
                self._shown = batch + self._shown  # report them on the next link
            except ServerError as error:
                logger.debug("receipt refused: %s", error)

    # --- Feature flags ---------------------------------------------------------------------

    def flag_enabled(self, key: str) -> bool:
        return bool(self.flags.get(key, {}).get("enabled", False))

    def _put_flag(self, key: str, enabled: bool, revision: int) -> None:
        known = self.flags.get(key)
        if known is None or int(known["revision"]) <= revision:
            self.flags[key] = {"enabled": enabled, "revision": revision}

    def apply_flags(self, snapshot: dict[str, dict[str, Any]]) -> None:
        """A full snapshot (hello, login, GET /api/flags): features it omits are gone."""
        for key, value in snapshot.items():
            self._put_flag(key, bool(value["enabled"]), int(value["revision"]))
        for key in set(self.flags) - set(snapshot):
            del self.flags[key]

    def apply_flag_entry(self, payload: dict[str, Any]) -> None:
        """A `flag` entry: {"feature", "revision", "devices": {"<device id>": bool}}."""
        value = payload.get("devices", {}).get(str(self.device_id))
        if value is not None and isinstance(payload.get("feature"), str):
            self._put_flag(payload["feature"], bool(value), int(payload.get("revision", 0)))

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any]:
        """The next queued entry that satisfies `predicate` (others are dropped)."""
        deadline = time.monotonic() + timeout
        while True:
            entry = await asyncio.wait_for(
                self.entries.get(), max(0.0, deadline - time.monotonic())
            )
            if predicate(entry):
                return entry


# --- HTTP helpers (login and the REST calls around chatting) ----------------------------------


@dataclass(frozen=True)
class Session:
    base_url: str
    ticket: str
    user_id: int
    device_id: int
    flags: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Ticket {self.ticket}"}

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + "/ws/sync"


async def login(
    http: httpx.AsyncClient,
    base_url: str,
    identifier: str,
    password: str,
    *,
    platform: str = "other",
    client_version: str = "3.0.0",
    name: str = "python-client",
    overload_retries: int = 5,
) -> Session:
    """Log in. Sent home (421 `home_elsewhere`, docs/protocol.md §2b), it logs in at
    the first home endpoint. Refused as overloaded (503 `overloaded`: the server's
    login pool is full, docs/overload.md), it asks again after `retry_after` plus up
    to half as much at random, at most `overload_retries` times."""
    payload = {
        "identifier": identifier,
        "password": password,
        "device": {"platform": platform, "client_version": client_version, "name": name},
    }
    for attempt in range(overload_retries + 1):
        response = await http.post(f"{base_url}/api/accounts/login", json=payload)
        if response.status_code == HOME_ELSEWHERE_STATUS:  # log in at home
            homes = response.json().get("details", {}).get("endpoints") or []
            if homes:
                base_url = str(homes[0]).rstrip("/")
                response = await http.post(f"{base_url}/api/accounts/login", json=payload)
        if response.status_code != 503 or attempt == overload_retries:
            break
        refusal = response.json() if response.content else {}
        if refusal.get("code") != "overloaded":
            break
        seconds = float(refusal.get("retry_after", 1))
        await asyncio.sleep(seconds * (1 + random.random() / 2))  # noqa: S311 - jitter
    response.raise_for_status()
    body = response.json()
    return Session(
        base_url, body["ticket"], body["user"]["id"], body["device"]["id"], body.get("flags", {})
    )
