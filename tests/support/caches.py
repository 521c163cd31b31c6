"""Cache settings for tests of behaviour when Redis is down."""

from django.conf import settings

# The production cache's settings (its retry policy included), on a port nothing
# listens on, with short timeouts.
_PRODUCTION = settings.CACHES["default"]
UNREACHABLE_REDIS_CACHES = {
    "default": {
        **_PRODUCTION,
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {
            **_PRODUCTION.get("OPTIONS", {}),
            "socket_connect_timeout": 0.2,
            "socket_timeout": 0.2,
        },
    }
}
