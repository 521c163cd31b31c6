"""Websocket URL patterns (the SYNC endpoint arrives with the messaging issue)."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
