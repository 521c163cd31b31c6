"""Outbound HTTP: the one place to get an httpx client that is counted and timed.

    from wechat_core.http import outbound_client
    with outbound_client(service="publicplatform.webhook") as client:
        client.post(url, content=body)

Every call through it is counted in `outbound_requests_total{service, method,
outcome}` (outcome: the status class, or "error" when no answer came) and timed
in `outbound_request_duration_seconds` (until the response headers), with the
process's campus and data centre. `service` names the caller (keep it to a
fixed set: it is a label); the target host is deliberately not a label, since
developers' servers are unbounded. `async_outbound_client` is the asyncio twin.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from wechat_core.metrics import counter, histogram

OUTBOUND_REQUESTS = counter(
    "outbound_requests_total",
    "Outbound HTTP calls by caller, method and outcome.",
    ["service", "method", "outcome"],
    process_labels=True,
)
OUTBOUND_DURATION = histogram(
    "outbound_request_duration_seconds",
    "Outbound HTTP calls: time to the response headers.",
    ["service"],
    process_labels=True,
)
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def _record(service: str, method: str, outcome: str, started: float) -> None:
    method = method if method in _METHODS else "other"
    OUTBOUND_REQUESTS.inc(service, method, outcome)
    OUTBOUND_DURATION.observe(service, value=time.perf_counter() - started)


class InstrumentedTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, service: str) -> None:
        self.inner, self.service = inner, service

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = self.inner.handle_request(request)
        except Exception:
            _record(self.service, request.method, "error", started)
            raise
        _record(self.service, request.method, f"{response.status_code // 100}xx", started)
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncInstrumentedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, service: str) -> None:
        self.inner, self.service = inner, service

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        try:
            response = await self.inner.handle_async_request(request)
        except Exception:
            _record(self.service, request.method, "error", started)
            raise
        _record(self.service, request.method, f"{response.status_code // 100}xx", started)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def outbound_client(*, service: str, **options: Any) -> httpx.Client:
    """An httpx.Client whose calls are measured; `options` go to httpx.Client
    (timeout, headers, …) and `transport` may wrap a custom transport."""
    inner = options.pop("transport", None) or httpx.HTTPTransport()
    options.setdefault("timeout", 10.0)
    return httpx.Client(transport=InstrumentedTransport(inner, service), **options)


def async_outbound_client(*, service: str, **options: Any) -> httpx.AsyncClient:
    inner = options.pop("transport", None) or httpx.AsyncHTTPTransport()
    options.setdefault("timeout", 10.0)
    return httpx.AsyncClient(transport=AsyncInstrumentedTransport(inner, service), **options)
