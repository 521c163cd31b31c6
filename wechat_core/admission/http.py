"""FastReject for HTTP: decided in the event loop, before any thread or query.

`AdmissionASGI` wraps the Django ASGI application. For each request it resolves
the route (cached by path), takes its business priority and the caller's user
priority, and asks the controller: a refused request is answered 503 at once
from the event loop (`{"code": "overloaded", ...}` with Retry-After). An
admitted one then waits for one of ADMISSION_HTTP_WORKERS slots (Django runs
each request's sync middleware and view in a thread of its own; the slots are
the worker pool whose queue DAGOR measures; long-poll routes and operators'
pages skip it) and `AdmissionMiddleware`, the outermost sync middleware,
reports how long the request waited between its arrival and its first line of
Python in the thread: the queuing time that steers the level.

Logins and registrations hash a password with argon2 (tens of ms of a core and
19 MiB each at the default cost, PASSWORD_ARGON2_*): they are the highest
priority, never refused by the level, but they must not eat the CPU unboundedly.
They run in a **login pool** of their own (ADMISSION_LOGIN_WORKERS at a time,
outside the general slots), and a login is refused at once (503 `overloaded`)
when the logins already waiting would keep it waiting longer than
ADMISSION_LOGIN_WAIT_MS (their count times the pool's recent average hashing
time, per worker).

Refusals are written from precomputed bytes (one body per tier and retry-after).

Every answer to an admitted request carries `X-Throttle-Tier` when the tier is
above 0, so clients slow down before they are refused (seed 001, 保护点前置).
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

from wechat_core import reqtiming
from wechat_core.admission.controller import Decision, controller
from wechat_core.admission.metrics import ADMISSION_REQUESTS, QUEUE_SECONDS
from wechat_core.admission.priorities import (
    Business,
    password_route,
    route_priority,
    user_priority,
)
from wechat_core.admission.probes import probes_start

ARRIVED = "wechat.admission.arrived"
OVERLOADED_MESSAGE = "The server is overloaded; retry after retry_after seconds."


# Where an admitted request runs: one of the general worker slots, the login pool,
# or unbounded (long-polls wait on purpose; operators' pages must get through).
SLOTS, LOGIN_POOL, UNBOUNDED = "slots", "login", "unbounded"


@functools.lru_cache(maxsize=8192)
def route_of_path(path: str) -> tuple[Business, str]:
    """(business priority, pool: SLOTS, LOGIN_POOL or UNBOUNDED) of a path."""
    if path.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return Business.LOGIN, SLOTS  # the web client itself: without it nobody logs in
    try:
        match = resolve(path)
    except Resolver404:
        return Business.OTHER, SLOTS
    business = route_priority(match.url_name, match.namespace)
    if match.route in settings.MONITORING_LONG_POLL_ROUTES or business == Business.OPERATOR:
        return business, UNBOUNDED
    if password_route(match.url_name, match.namespace):
        return business, LOGIN_POOL
    return business, SLOTS


def caller_of(scope: dict[str, Any]) -> str:
    """Who asks, unverified (ranking only): the ticket's id (from the Authorization
    header, or a websocket's `ticket.<ticket>` subprotocol), else the peer address."""
    token = ""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            token = value.decode("latin-1").partition(" ")[2].strip()
    if not token:
        for subprotocol in scope.get("subprotocols", ()):
            if subprotocol.startswith("ticket."):
                token = subprotocol.removeprefix("ticket.")
    if token:
        return "t:" + token.rpartition(".")[0] if token.count(".") == 2 else "t:" + token
    client = scope.get("client") or ("", 0)
    return f"ip:{client[0]}"


def refusal_body(decision: Decision) -> dict[str, Any]:
    return {
        "code": "overloaded",
        "message": OVERLOADED_MESSAGE,
        "retry_after": decision.retry_after,
        "tier": decision.tier,
        "details": {"retry_after": decision.retry_after, "tier": decision.tier},
    }


class LoginPool:
    """ADMISSION_LOGIN_WORKERS password checks at a time; a login that would wait
    longer than ADMISSION_LOGIN_WAIT_MS behind the others is refused at once."""

    def __init__(self, workers: int, wait_budget: float) -> None:
        self.workers = workers
        self.wait_budget = wait_budget
        self.slots = asyncio.Semaphore(workers)
        self.waiting = 0
        self.running = 0
        self.average = 0.05  # seconds per login (argon2, default cost), until measured

    def expected_wait(self) -> float:
        """How long a login arriving now would wait for a worker."""
        ahead = self.waiting + self.running - self.workers + 1
        return max(0, ahead) * self.average / self.workers

    def full(self) -> bool:
        return self.running >= self.workers and self.expected_wait() > self.wait_budget

    async def run(self, call: Callable[[], Any]) -> None:
        self.waiting += 1
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        started = time.perf_counter()
        try:
            await call()
        finally:
            self.running -= 1
            self.slots.release()
            took = time.perf_counter() - started
            self.average += 0.2 * (took - self.average)


class AdmissionASGI:
    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self._slots: asyncio.Semaphore | None = None
        self._logins: LoginPool | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not settings.ADMISSION_ENABLED:
            await self.app(scope, receive, send)
            return
        arrived = time.perf_counter()
        probes_start()
        business, pool = route_of_path(scope["path"])
        decision = controller().admit(business, user_priority(caller_of(scope)))
        if decision.admitted and pool == LOGIN_POOL and settings.ADMISSION_LOGIN_WORKERS > 0:
            await self._login(scope, receive, send, business, decision)
            return
        ADMISSION_REQUESTS.inc(
            "http", business.name.lower(), "admitted" if decision.admitted else "refused"
        )
        if not decision.admitted:
            await _refuse(send, decision)
            return
        scope[ARRIVED] = arrived
        if pool == UNBOUNDED or settings.ADMISSION_HTTP_WORKERS <= 0:
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(settings.ADMISSION_HTTP_WORKERS)
        async with self._slots:
            reqtiming.mark("slot")
            await self.app(scope, receive, send)

    async def _login(
        self, scope: dict[str, Any], receive: Any, send: Any, business: Business, ok: Decision
    ) -> None:
        if self._logins is None:
            self._logins = LoginPool(
                settings.ADMISSION_LOGIN_WORKERS, settings.ADMISSION_LOGIN_WAIT_MS / 1000
            )
        if self._logins.full():
            tier = max(1, ok.tier)
            ADMISSION_REQUESTS.inc("http", business.name.lower(), "refused")
            await _refuse(
                send, Decision(False, tier, settings.ADMISSION_RETRY_AFTER_SECONDS * tier)
            )
            return
        ADMISSION_REQUESTS.inc("http", business.name.lower(), "admitted")

        async def call() -> None:
            # Measured from here: the pool's own queue is bounded above, and is not
            # the general overload the level steers by.
            waited = time.perf_counter() - queued
            QUEUE_SECONDS.observe("login", value=waited)
            scope[ARRIVED] = time.perf_counter()
            await self.app(scope, receive, send)

        queued = time.perf_counter()
        await self._logins.run(call)


@functools.lru_cache(maxsize=64)
def _refusal(tier: int, retry_after: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two ASGI messages of a refusal, built once per (tier, retry_after)."""
    body = json.dumps(refusal_body(Decision(False, tier, retry_after))).encode()
    start = {
        "type": "http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry_after).encode()),
            (b"x-throttle-tier", str(tier).encode()),
            (b"cache-control", b"no-store"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


async def _refuse(send: Any, decision: Decision) -> None:
    start, body = _refusal(decision.tier, decision.retry_after)
    # Servers may add to the messages they are given: each refusal sends copies.
    await send({**start, "headers": list(start["headers"])})
    await send(dict(body))


class AdmissionMiddleware:
    """Reports the request's queuing time; adds the tier to answers. Sync-only, outermost."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        arrived = getattr(request, "scope", {}).get(ARRIVED)
        if arrived is not None:
            waited = time.perf_counter() - arrived
            controller().queued(waited)
            QUEUE_SECONDS.observe("http", value=waited)
        response = self.get_response(request)
        if arrived is not None:
            tier = controller().tier()
            if tier:
                response["X-Throttle-Tier"] = str(tier)
        return response
