"""Every HTTP call to a developer's server goes through `developer_call`.

One module owns the outbound client, made by monitoring's `outbound_client`
(wechat_core.http), so every call is counted and timed as
`outbound_requests_total{service="publicplatform.developer"}`. Every call has
the same guards: a total deadline, a cap on how much of the answer is read, no
redirects, and no exception escaping (failures come back as a kind the webhook
log can show).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from wechat_core.http import outbound_client

USER_AGENT = "wechat-style-platform/1.0 (official accounts webhook)"
METRICS_SERVICE = "publicplatform.developer"

_client: httpx.Client | None = None
_lock = threading.Lock()


def _shared_client() -> httpx.Client:
    """One pooled client per process: keep-alive to developers' servers matters for
    the round trip (docs/performance.md)."""
    global _client
    with _lock:
        if _client is None:
            _client = outbound_client(
                service=METRICS_SERVICE,
                transport=httpx.HTTPTransport(
                    trust_env=False,
                    limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                ),
                follow_redirects=False,
                trust_env=False,
                headers={"User-Agent": USER_AGENT},
            )
        return _client


@dataclass(frozen=True, slots=True)
class DeveloperResponse:
    """What came back: `error` is "", "timeout", "connect_error" or "too_large"."""

    url: str
    status_code: int | None
    body: bytes
    elapsed_ms: float
    error: str = ""
    detail: str = ""


def developer_call(
    *,
    method: str,
    url: str,
    params: dict[str, str],
    timeout: float,
    max_bytes: int,
    content: bytes | None = None,
    content_type: str | None = None,
) -> DeveloperResponse:
    """Call a developer's server; never raises for network trouble."""
    headers = {"Content-Type": content_type} if content_type else {}
    started = time.perf_counter()
    deadline = started + timeout
    full_url = str(httpx.URL(url).copy_merge_params(params))

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        with _shared_client().stream(
            method, url, params=params, content=content, headers=headers,
            timeout=httpx.Timeout(timeout),
        ) as response:  # fmt: skip
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    return DeveloperResponse(
                        full_url, response.status_code, b"".join(chunks), elapsed(),
                        "too_large", f"more than {max_bytes} bytes",
                    )  # fmt: skip
                chunks.append(chunk)
                if time.perf_counter() > deadline:
                    return DeveloperResponse(
                        full_url, response.status_code, b"".join(chunks), elapsed(), "timeout",
                        f"the answer took longer than {timeout:g} s",
                    )  # fmt: skip
            return DeveloperResponse(full_url, response.status_code, b"".join(chunks), elapsed())
    except httpx.TimeoutException as error:
        return DeveloperResponse(
            full_url, None, b"", elapsed(), "timeout",
            f"no answer within {timeout:g} s ({type(error).__name__})",
        )  # fmt: skip
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as error:
        return DeveloperResponse(
            full_url,
            None,
            b"",
            elapsed(),
            "connect_error",
            f"{type(error).__name__}: {error}"[:300],
        )
