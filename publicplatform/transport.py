"""Every HTTP call to a developer's server goes through `developer_call`.

One module owns the outbound client, made by monitoring's `outbound_client`
(wechat_core.http), so every call is counted and timed as
`outbound_requests_total{service="publicplatform.developer"}`. Every call has
the same guards: a total deadline, a cap on how much of the answer is read, no
redirects, no exception escaping (failures come back as a kind the webhook log
can show), and, unless PUBLICPLATFORM_ALLOW_PRIVATE_SERVER_URLS is on, a
connection only to public addresses, checked as the connection is made.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore
import httpx
from django.conf import settings

from wechat_core.http import outbound_client

USER_AGENT = "wechat-style-platform/1.0 (official accounts webhook)"
METRICS_SERVICE = "publicplatform.developer"
MAX_CONNECTIONS, MAX_KEEPALIVE, KEEPALIVE_SECONDS = 200, 50, 5.0

_client: httpx.Client | None = None
_lock = threading.Lock()


class AddressRefused(ValueError):
    """A developer's host that does not resolve, or resolves to a non-public address."""


def public_addresses(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, if every one is on the public internet."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise AddressRefused(f"The host {host} does not resolve.") from error
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses or not all(
        ipaddress.ip_address(address.split("%")[0]).is_global for address in addresses
    ):
        raise AddressRefused(f"The host {host} is not on the public internet.")
    return addresses


class _PublicOnlyBackend(httpcore.SyncBackend):
    """Resolves the developer's host itself and connects to an address it checked.

    Checking the URL only when it is saved leaves DNS rebinding open: the name can
    resolve to 127.0.0.1 or a private network by the time a push goes out. Here
    the check and the connection use the same resolution, so there is no second
    lookup to race; TLS still verifies the certificate against the host name.
    """

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        if settings.PUBLICPLATFORM_ALLOW_PRIVATE_SERVER_URLS:
            return super().connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            addresses = public_addresses(host, port)
        except AddressRefused as error:
            raise httpcore.ConnectError(str(error)) from error
        for address in addresses[:-1]:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue  # the next address, as socket.create_connection would
        return super().connect_tcp(addresses[-1], port, timeout, local_address, socket_options)


def _guarded_transport() -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx takes no network backend, so its connection pool (the transport's one
    # piece of state) is made again with ours; tests/publicplatform/test_transport.py
    # shows the guard holds.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=MAX_CONNECTIONS,
        max_keepalive_connections=MAX_KEEPALIVE,
        keepalive_expiry=KEEPALIVE_SECONDS,
        network_backend=_PublicOnlyBackend(),
    )
    return transport


def _shared_client() -> httpx.Client:
    """One pooled client per process: keep-alive to developers' servers matters for
    the round trip (docs/performance.md)."""
    global _client
    with _lock:
        if _client is None:
            _client = outbound_client(
                service=METRICS_SERVICE,
                transport=_guarded_transport(),
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
