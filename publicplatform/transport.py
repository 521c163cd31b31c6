"""Every HTTP call to a developer's server goes through `developer_call`.

One module owns the outbound client, made by monitoring's `outbound_client`
(wechat_core.http), so every call is counted and timed as
`outbound_requests_total{service="publicplatform.developer"}`. Every call has
the same guards: a total deadline, a cap on how much of the answer is read, no
redirects, no exception escaping (failures come back as a kind the webhook log
can show), no database connection held while it waits, and a connection only
to public addresses (or to the private networks an operator listed in
PUBLICPLATFORM_PRIVATE_SERVER_NETWORKS), checked as the connection is made.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore
import httpx
from django.conf import settings
from django.db import connections

from wechat_core.breakers import Ejected, instance_of, shielded
from wechat_core.http import outbound_client

USER_AGENT = "wechat-style-platform/1.0 (official accounts webhook)"
METRICS_SERVICE = "publicplatform.developer"
MAX_CONNECTIONS, MAX_KEEPALIVE, KEEPALIVE_SECONDS = 200, 50, 5.0

_client: httpx.Client | None = None
_lock = threading.Lock()


class AddressRefused(ValueError):
    """A developer's host that does not resolve, or resolves to an address not allowed."""


# Of IPv6, only global unicast (2000::/3) reaches the public internet; the rest of
# the space is reserved, local (fc00::/7, fe80::/10, the deprecated site-local
# fec0::/10) or a spelling of an IPv4 address (::a.b.c.d, ::ffff:a.b.c.d,
# ::ffff:0:a.b.c.d, local-use NAT64 64:ff9b:1::/48), refused whatever it carries.
# Two forms inside or beside it carry an IPv4 address at a fixed place, and reach
# whatever that is: 6to4 (2002::/16, RFC 3056) and well-known NAT64 (64:ff9b::/96,
# RFC 6052); they are public when the IPv4 address is.
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast


def is_public_address(address: str) -> bool:
    """Whether `address` reaches the public internet (and only it)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return _public(ip)
    if ip in _NAT64:
        return _public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip not in _GLOBAL_UNICAST or not _public(ip):
        return False
    carried = ip.sixtofour
    return carried is None or _public(carried)


@functools.lru_cache(maxsize=8)
def _networks(listed: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in listed)


def is_allowed_address(address: str) -> bool:
    """Public, or inside a network the operator listed in
    PUBLICPLATFORM_PRIVATE_SERVER_NETWORKS (a developer's test server on loopback)."""
    if is_public_address(address):
        return True
    ip = ipaddress.ip_address(address.split("%")[0])
    return any(
        ip in network
        for network in _networks(tuple(settings.PUBLICPLATFORM_PRIVATE_SERVER_NETWORKS))
    )


def allowed_addresses(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, if every one is allowed (`is_allowed_address`)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise AddressRefused(f"The host {host} does not resolve.") from error
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses or not all(is_allowed_address(address) for address in addresses):
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
        try:
            addresses = allowed_addresses(host, port)
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


def database_connections_give_back() -> None:
    """Give this thread's database connections back to the pool before a call
    that can wait seconds on someone else's server.

    Holding one across the call let 24 console requests (each waiting up to 5 s
    on a slow developer server) take every pooled connection, and other users'
    requests failed with PoolTimeout (issue 11). The next query takes a
    connection again. Inside a transaction the connection cannot be given back;
    no caller in the product calls out from one (the unit tests' own transaction
    is the exception).
    """
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def with_params(url: str, params: dict[str, str]) -> str:
    """`url` with `params` appended to its own query, as WeChat calls it: the
    developer's parameters stay (`?access_token=X` in a server URL is theirs);
    one of ours with the same name replaces theirs, or the signature would not
    be the one their server reads. (httpx's `params=` drops the URL's query.)"""
    return str(httpx.URL(url).copy_merge_params(params))


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
    """Call a developer's server; never raises for network trouble. A server that
    keeps failing is ejected by this process's breaker for it (wechat_core.breakers):
    calls are then answered `connect_error` "ejected: ..." without reaching it."""
    try:
        return shielded(
            METRICS_SERVICE,
            instance_of(url),
            lambda: _developer_call(
                method=method,
                url=url,
                params=params,
                timeout=timeout,
                max_bytes=max_bytes,
                content=content,
                content_type=content_type,
            ),
            failed=_failing,
        )
    except Ejected as error:
        return DeveloperResponse(
            with_params(url, params), None, b"", 0.0, "connect_error", f"ejected: {error}"
        )


def _failing(response: DeveloperResponse) -> bool:
    """What counts against the instance: no answer, or a server error."""
    return response.error in ("timeout", "connect_error") or (response.status_code or 0) >= 500


def _developer_call(
    *,
    method: str,
    url: str,
    params: dict[str, str],
    timeout: float,
    max_bytes: int,
    content: bytes | None,
    content_type: str | None,
) -> DeveloperResponse:
    database_connections_give_back()
    headers = {"Content-Type": content_type} if content_type else {}
    started = time.perf_counter()
    deadline = started + timeout
    full_url = with_params(url, params)

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        with _shared_client().stream(
            method,
            full_url,
            content=content,
            headers=headers,
            timeout=httpx.Timeout(timeout),
        ) as response:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    return DeveloperResponse(
                        full_url,
                        response.status_code,
                        b"".join(chunks),
                        elapsed(),
                        "too_large",
                        f"more than {max_bytes} bytes",
                    )
                chunks.append(chunk)
                if time.perf_counter() > deadline:
                    return DeveloperResponse(
                        full_url,
                        response.status_code,
                        b"".join(chunks),
                        elapsed(),
                        "timeout",
                        f"the answer took longer than {timeout:g} s",
                    )
            return DeveloperResponse(full_url, response.status_code, b"".join(chunks), elapsed())
    except httpx.TimeoutException as error:
        return DeveloperResponse(
            full_url,
            None,
            b"",
            elapsed(),
            "timeout",
            f"no answer within {timeout:g} s ({type(error).__name__})",
        )
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as error:
        return DeveloperResponse(
            full_url,
            None,
            b"",
            elapsed(),
            "connect_error",
            f"{type(error).__name__}: {error}"[:300],
        )
