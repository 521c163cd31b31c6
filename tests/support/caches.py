"""Cache settings for tests of behaviour when Redis is down."""

# A Redis cache on a port nothing listens on, with short timeouts.
UNREACHABLE_REDIS_CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    }
}
