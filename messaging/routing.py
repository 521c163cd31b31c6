"""Websocket URL patterns."""

from django.urls import URLPattern, path

from messaging.consumers import SyncConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/sync", SyncConsumer.as_asgi(), name="ws-sync"),
]
