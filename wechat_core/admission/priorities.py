"""Who matters most under overload: business priorities and user priorities.

A request's **business priority** comes from what it asks for, looked up by name
in tables kept here: URL route names (`namespace:name` for namespaced routes),
websocket frame types and Celery task names. wechat_core imports no app, so the
tables name things rather than import them; an app may add or change entries
with `register_routes` / `register_frames` (in its AppConfig.ready). Smaller is
more important (docs/overload.md has the table):

    0 LOGIN     login, registration, ticket refresh
    1 SEND      sending, recalling, reading a message
    2 SYNC      sync (websocket, long-poll), heartbeats, conversations
    3 OFFICIAL  official accounts
    4 SHAKE     shake / red packets
    5 OTHER     everything else

Operators' pages (the admin, the monitoring dashboards, /metrics, health checks,
the API schema) are OPERATOR: never refused and kept out of the histogram.

A request's **user priority** (0..USER_LEVELS-1) is a keyed hash of who asks and
the current hour (DAGOR): under overload the same users are not always the ones
refused, and nobody outside can compute their own rank.
"""

from __future__ import annotations

import hashlib
import time
from enum import IntEnum

from django.conf import settings


class Business(IntEnum):
    OPERATOR = -1
    LOGIN = 0
    SEND = 1
    SYNC = 2
    OFFICIAL = 3
    SHAKE = 4
    OTHER = 5


BUSINESS_LEVELS = len(Business) - 1  # OPERATOR stands apart
USER_LEVELS = 128

# Route names as Django resolves them (url_name, or "namespace:url_name").
ROUTES: dict[str, Business] = {
    "login": Business.LOGIN,
    "index": Business.LOGIN,  # the web client's page
    "register": Business.LOGIN,
    "ticket-refresh": Business.LOGIN,
    "messaging-send": Business.SEND,
    "messaging-recall": Business.SEND,
    "messaging-read": Business.SEND,
    "uploads": Business.SEND,
    "messaging-sync": Business.SYNC,
    "messaging-receipts": Business.SYNC,
    "conversations": Business.SYNC,
    "conversation": Business.SYNC,
    "conversation-messages": Business.SYNC,
    "attachment": Business.SYNC,
    "flags": Business.SYNC,
    "official-search": Business.OFFICIAL,
    "official-following": Business.OFFICIAL,
    "official-account": Business.OFFICIAL,
    "official-follow": Business.OFFICIAL,
    "official-unfollow": Business.OFFICIAL,
    "official-menu-tap": Business.OFFICIAL,
    "official-conversation": Business.OFFICIAL,
    "shake": Business.SHAKE,
    "redpackets-shake": Business.SHAKE,
    "metrics": Business.OPERATOR,
    "health": Business.OPERATOR,
    "topology": Business.OPERATOR,
    "schema": Business.OPERATOR,
    "api-docs": Business.OPERATOR,
    "api-redoc": Business.OPERATOR,
}
# Whole namespaces: operators' pages.
NAMESPACES: dict[str, Business] = {
    "admin": Business.OPERATOR,
    "monitoring": Business.OPERATOR,
}
# Routes whose handler hashes a password (argon2: tens of ms of a core each): they
# run in the login pool (wechat_core.admission.http), not the general slots.
PASSWORD_ROUTES: set[str] = {"login", "register"}
# Websocket frame types (docs/protocol.md §3): messaging's command table
# (messaging.commands) registers the priority each command declares.
FRAMES: dict[str, Business] = {}


def register_routes(table: dict[str, Business]) -> None:
    """Give route names (`name` or `namespace:name`) a business priority."""
    ROUTES.update(table)


def register_frames(table: dict[str, Business]) -> None:
    """Give websocket frame types a business priority."""
    FRAMES.update(table)


def route_priority(url_name: str | None, namespace: str | None) -> Business:
    if namespace:
        found = NAMESPACES.get(namespace.split(":")[0])
        if found is not None:
            return found
        found = ROUTES.get(f"{namespace}:{url_name}")
        if found is not None:
            return found
    return ROUTES.get(url_name or "", Business.OTHER)


def password_route(url_name: str | None, namespace: str | None) -> bool:
    name = f"{namespace}:{url_name}" if namespace else (url_name or "")
    return name in PASSWORD_ROUTES


def frame_priority(frame_type: str) -> Business:
    return FRAMES.get(frame_type, Business.OTHER)


def user_priority(who: str | int, *, now: float | None = None) -> int:
    """A rank in 0..USER_LEVELS-1 for `who` this hour (0 is served longest)."""
    hour = int((time.time() if now is None else now) // 3600)
    digest = hashlib.blake2b(
        f"{who}|{hour}".encode(), digest_size=2, key=settings.SECRET_KEY.encode()[:64]
    ).digest()
    return int.from_bytes(digest, "big") % USER_LEVELS
