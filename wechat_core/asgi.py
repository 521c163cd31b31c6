"""ASGI entry point: HTTP through Django, websockets to the app for their path.

A websocket stays open for hours, and every wrapper between the server and the
app (routers, middleware) keeps a frame and often a copy of the scope for all
that time, so this dispatches in one step (docs/performance.md, idle websockets).
"""

import gc
import os
from typing import Any
from urllib.parse import urlparse

from django.core.asgi import get_asgi_application

from wechat_core import daphne_compat, reqtiming

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wechat_core.settings")
daphne_compat.install()
django_asgi_app: Any = get_asgi_application()

# channels ships no type information; types-channels needs a newer django-stubs.
from channels.security.websocket import (  # type: ignore[import-untyped]  # noqa: E402
    OriginValidator,
    WebsocketDenier,
)
from django.conf import settings  # noqa: E402

from messaging.routing import websocket_routes  # noqa: E402
from monitoring.instrument.websocket import watch  # noqa: E402
from monitoring.runtime import process_start  # noqa: E402
from shake.access import engine_start  # noqa: E402
from shake.fastpath import ShakeFastPath  # noqa: E402
from wechat_core.admission.http import AdmissionASGI  # noqa: E402
from wechat_core.campuses import CampusGateASGI  # noqa: E402
from wechat_core.campuses import gate as campus_gate  # noqa: E402
from wechat_core.embedded import embedded_beat_start  # noqa: E402
from wechat_core.reqtiming import TimingASGI  # noqa: E402

process_start()  # metric history
embedded_beat_start()  # the schedule, where no Celery beat runs (EMBEDDED_BEAT)
engine_start()  # the shake engine: its access slot and first reservations, off the shake path


class BrowserOriginValidator(OriginValidator):  # type: ignore[misc]
    """Browsers must come from an allowed host; other clients send no Origin.

    Websockets authenticate with the ticket in the handshake, never a cookie, so a
    client without an Origin header (an app, the Python client) cannot be a
    cross-site page riding on someone's session. Browsers always send Origin,
    and theirs must match ALLOWED_HOSTS (or WEBSOCKET_ALLOWED_ORIGINS).
    """

    def valid_origin(self, parsed_origin: Any) -> bool:
        return parsed_origin is None or bool(self.validate_origin(parsed_origin))

    def allows(self, scope: dict[str, Any]) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"origin":
                try:
                    return bool(self.valid_origin(urlparse(value.decode("latin-1"))))
                except (UnicodeDecodeError, ValueError):
                    return False
        return bool(self.valid_origin(None))


def _origin_validator() -> BrowserOriginValidator:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(None, [*hosts, *settings.WEBSOCKET_ALLOWED_ORIGINS])


_origins = _origin_validator()
# Shakes before Django, yet admitted, queued and gated as any request (docs/shake.md).
django_asgi_app = ShakeFastPath(django_asgi_app)
django_asgi_app = AdmissionASGI(django_asgi_app)  # FastReject (docs/overload.md)
django_asgi_app = CampusGateASGI(django_asgi_app)  # a blocked campus refuses first
if reqtiming.enabled():
    django_asgi_app = TimingASGI(django_asgi_app)  # benchmarks only: stage timings
if settings.ASGI_GC_FREEZE:
    # What starting built lives as long as the process: no full collection need walk
    # it again (ASGI_GC_FREEZE in settings). Collected first, so no garbage is kept.
    gc.collect()
    gc.freeze()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        route = websocket_routes.get(scope["path"])
        if route is None or not _origins.allows(scope):
            await WebsocketDenier()(scope, receive, send)  # the handshake gets a 403
            return
        socket = watch(scope, receive, send)  # counted: monitoring.instrument
        if socket is None:
            await campus_gate().websocket(scope, receive, send, route)
            return
        try:
            await campus_gate().websocket(scope, socket.receive, socket.send, route)
        finally:
            socket.gone()
        return
    await django_asgi_app(scope, receive, send)
