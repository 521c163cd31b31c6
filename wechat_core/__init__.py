"""Project package: settings, ASGI/Celery wiring and the shared framework pieces."""

from wechat_core.celery import app as celery_app

__all__ = ["celery_app"]
