"""Every HTTP request counted and timed, with no code in the views (DESIGN.md §7).

`MonitoringMiddleware` is the outermost middleware. After the response it knows
the resolved route (the URL pattern, e.g. `api/messaging/conversations/<id:…>`,
so ids never become labels), the module (the view's app, or the URL namespace
such as `admin`), the status class, and from the verified ticket the client's
platform and version (`none` without a ticket). Routes in
MONITORING_LONG_POLL_ROUTES wait by design: they are counted but not timed.

It is also where the traffic guard sees HTTP (monitoring.trafficguard): each answer is
fingerprinted, a client repeating one request without progress is blocked, and
a blocked client gets 429 with Retry-After and the protocol's throttle body
(tier 2, reason traffic_guard) before any view runs. Paths listed in
MONITORING_GUARD_EXEMPT_ROUTES (health checks, scrapes) are neither counted nor
refused.

Sync-only like the rest of the chain (see MIDDLEWARE in settings).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from accounts.authentication import ticket_from_header
from accounts.types import VerifiedTicket
from monitoring.trafficguard import (
    GUARD_REFUSED,
    any_blocked,
    blocked_for,
    guard_count,
    guard_escalate,
)
from wechat_core.api.request import client_ip
from wechat_core.errors import ServiceError
from wechat_core.metrics import client_version_label, counter, histogram

HTTP_REQUESTS = counter(
    "http_requests_total",
    "HTTP requests by module, route, method, status class and client.",
    ["module", "route", "method", "outcome", "client_version", "platform"],
    process_labels=True,
)
HTTP_DURATION = histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request (long-poll routes excepted).",
    ["module", "route", "method", "client_version", "platform"],
    process_labels=True,
)
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
_FINGERPRINT_MAX_BYTES = 65536


def route_of(request: HttpRequest) -> tuple[str, str]:
    """(module, route) of a handled request."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        route = match.route or match.view_name or "unnamed"
        if match.namespaces:
            return match.namespaces[0], route
        return str(getattr(match.func, "__module__", "") or "none").split(".")[0], route
    if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return "static", "static"
    return "none", "unmatched"


def request_fingerprint(method: str, full_path: str, status: int, content: bytes | None) -> int:
    """What the traffic guard compares to tell a repeat: the request line, the status
    and the answer's body (if small). Shared with answers served before Django
    (shake.fastpath), so that both count a repeat alike."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{method} {full_path} {status}".encode())
    if content is not None and len(content) <= _FINGERPRINT_MAX_BYTES:
        digest.update(content)
    return int.from_bytes(digest.digest(), "big")


def _fingerprint(request: HttpRequest, response: HttpResponse) -> int:
    content = None if response.streaming else response.content
    return request_fingerprint(
        request.method or "", request.get_full_path(), response.status_code, content
    )


def throttle_response(seconds: float) -> JsonResponse:
    retry_after = max(1, int(seconds + 0.999))
    response = JsonResponse(
        {
            "code": "throttled",
            "message": "This client repeats one request without progress; stop for a while.",
            "details": {"retry_after": retry_after, "tier": 2, "reason": "traffic_guard"},
        },
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


class MonitoringMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not settings.MONITORING_ENABLED:
            return self.get_response(request)
        started = time.perf_counter()
        exempt = request.path_info.lstrip("/") in settings.MONITORING_GUARD_EXEMPT_ROUTES
        refusal = self._refuse_if_blocked(request) if not exempt and any_blocked() else None
        response = refusal or self.get_response(request)
        elapsed = time.perf_counter() - started
        module, route = route_of(request)
        method = request.method if request.method in _METHODS else "other"
        ticket = getattr(request, "auth", None)
        if isinstance(ticket, VerifiedTicket):
            version, platform = client_version_label(ticket.client_version), ticket.platform
        else:
            ticket, version, platform = None, "none", "none"
        HTTP_REQUESTS.inc(
            module, route, method, f"{response.status_code // 100}xx", version, platform
        )
        if route not in settings.MONITORING_LONG_POLL_ROUTES:
            HTTP_DURATION.observe(module, route, method, version, platform, value=elapsed)
        if refusal is None and not exempt:
            self._watch(request, response, ticket, f"{method} {route}")
        return response

    def _identity(self, request: HttpRequest, ticket: VerifiedTicket | None) -> str:
        return f"device:{ticket.device_id}" if ticket else f"ip:{client_ip(request) or 'unknown'}"

    def _refuse_if_blocked(self, request: HttpRequest) -> HttpResponse | None:
        try:
            ticket = ticket_from_header(request.META.get("HTTP_AUTHORIZATION", "").encode())
        except (ServiceError, UnicodeEncodeError):
            ticket = None
        seconds = blocked_for(self._identity(request, ticket))
        if not seconds:
            return None
        GUARD_REFUSED.inc("http")
        return throttle_response(seconds)

    def _watch(
        self,
        request: HttpRequest,
        response: HttpResponse,
        ticket: VerifiedTicket | None,
        endpoint: str,
    ) -> None:
        if not settings.MONITORING_GUARD_ENABLED:
            return
        identity = self._identity(request, ticket)
        failed = response.status_code >= 400
        repeats = guard_count(identity, endpoint, _fingerprint(request, response), failed=failed)
        if repeats:
            guard_escalate(identity, endpoint, repeats)
