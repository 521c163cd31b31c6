"""The framework's measuring hooks: HTTP middleware, websocket wrapper, Celery signals.
Metrics and history live in the monitoring app; these only feed them."""
