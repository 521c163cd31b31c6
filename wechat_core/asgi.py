"""ASGI entry point: HTTP through Django, websockets through Channels routing."""

import os
from typing import Any

from django.core.asgi import get_asgi_application

from wechat_core import daphne_compat

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wechat_core.settings")
daphne_compat.install()
django_asgi_app = get_asgi_application()

# channels ships no type information; types-channels needs a newer django-stubs.
from channels.routing import ProtocolTypeRouter, URLRouter  # type: ignore[import-untyped]  # noqa: E402
from channels.security.websocket import OriginValidator  # type: ignore[import-untyped]  # noqa: E402
from django.conf import settings  # noqa: E402

from messaging.routing import websocket_urlpatterns  # noqa: E402


class BrowserOriginValidator(OriginValidator):  # type: ignore[misc]
    """Browsers must come from an allowed host; other clients send no Origin.

    Websockets authenticate with the ticket in the handshake, never a cookie, so a
    client without an Origin header (an app, the Python client) cannot be a
    cross-site page riding on someone's session. Browsers always send Origin,
    and theirs must match ALLOWED_HOSTS (or WEBSOCKET_ALLOWED_ORIGINS).
    """

    def valid_origin(self, parsed_origin: Any) -> bool:
        return parsed_origin is None or bool(self.validate_origin(parsed_origin))


def _websocket_app() -> Any:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    origins = [*hosts, *settings.WEBSOCKET_ALLOWED_ORIGINS]
    return BrowserOriginValidator(URLRouter(websocket_urlpatterns), origins)


application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": _websocket_app()})
