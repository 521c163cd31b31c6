"""Websocket paths and the ASGI applications behind them (wechat_core.asgi routes
by exact path: there are few, and each open websocket keeps its routing frames)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from messaging.websocket import sync_websocket

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

websocket_routes: dict[str, ASGIApp] = {
    "/ws/sync": sync_websocket,
}
