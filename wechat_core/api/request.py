"""Facts about the HTTP request that several apps need.

The client's address follows one trusted-proxy rule, for HTTP requests and
websocket handshakes alike: the ASGI servers report the TCP peer untouched
(wechat_core.serve starts them without their own proxy-header handling), and
X-Forwarded-For is believed only across the NUM_PROXIES proxies we run.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.http import HttpRequest


def forwarded_client_ip(*, peer: str | None, forwarded_for: str) -> str | None:
    """The client's address from the TCP peer and the X-Forwarded-For value.

    Each of our NUM_PROXIES proxies appends the address it got the request from,
    so the entry NUM_PROXIES from the right is the one our outermost proxy saw;
    anything left of it was written by the client and proves nothing. With no
    proxy (0) the peer is the client, whatever the header says.
    """
    candidate = peer
    if settings.NUM_PROXIES:
        hops = [part.strip() for part in forwarded_for.split(",")]
        hops = [hop for hop in hops if hop]
        if hops:
            candidate = hops[-min(settings.NUM_PROXIES, len(hops))]
    if not candidate:
        return None
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, trusting X-Forwarded-For only across NUM_PROXIES proxies."""
    return forwarded_client_ip(
        peer=request.META.get("REMOTE_ADDR"),
        forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR", ""),
    )


def scope_client_ip(scope: dict[str, Any]) -> str | None:
    """The same for an ASGI scope (a websocket handshake)."""
    client = scope.get("client")
    forwarded = b",".join(
        value for name, value in scope.get("headers", ()) if name == b"x-forwarded-for"
    )
    return forwarded_client_ip(
        peer=client[0] if client else None, forwarded_for=forwarded.decode("latin-1")
    )
