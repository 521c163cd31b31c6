"""ASGI entry point: HTTP through Django, websockets through Channels routing."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wechat_core.settings")
django_asgi_app = get_asgi_application()

# channels ships no type information; types-channels needs a newer django-stubs.
from channels.routing import ProtocolTypeRouter, URLRouter  # type: ignore[import-untyped]  # noqa: E402
from channels.security.websocket import (  # type: ignore[import-untyped]  # noqa: E402
    AllowedHostsOriginValidator,
)

from messaging.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
