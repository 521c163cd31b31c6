"""Typed access to environment variables: the only way settings read configuration.

django-environ does the parsing (URLs, booleans, lists); these wrappers give
settings a typed, keyword-only surface and one place that reads `.env`.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

_env = environ.Env()


def read_dotenv(path: Path) -> None:
    """Load `path` (KEY=value lines) without overriding variables already set."""
    if path.is_file():
        environ.Env.read_env(str(path), overwrite=False)


def env_str(name: str, *, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"The environment variable {name} is required.")
        return default
    return value


def env_bool(name: str, *, default: bool) -> bool:
    return bool(_env.bool(name, default=default))


def env_int(
    name: str, *, default: int, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = int(_env.int(name, default=default))
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {value}.")
    return value


def env_float(name: str, *, default: float, minimum: float | None = None) -> float:
    value = float(_env.float(name, default=default))
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}.")
    return value


def env_list(name: str, *, default: list[str]) -> list[str]:
    return [item.strip() for item in _env.list(name, default=default) if item.strip()]


def env_choice(name: str, *, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default=default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}; got {value!r}.")
    return value


def env_db(name: str, *, default: str) -> dict[str, Any]:
    """A Django DATABASES entry from a URL (postgres://…, sqlite:///…)."""
    return dict(_env.db_url_config(env_str(name, default=default)))


def env_networks(name: str, *, default: list[str]) -> list[str]:
    """A list of IP networks in CIDR notation (`127.0.0.0/8,::1/128`), each checked."""
    values = env_list(name, default=default)
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as error:
            raise ImproperlyConfigured(f"{name}: {value!r} is not an IP network.") from error
    return values
