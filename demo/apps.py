"""The demo package as a Django app, so that `createdemo` is a management command."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "Demo data"
