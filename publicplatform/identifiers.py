"""Identifiers of the protocol: appids, original ids, secrets, openids and unionids."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from django.conf import settings

OPENID_RE = re.compile(r"^[A-Za-z0-9_-]{28}$")


def new_appid() -> str:
    return "wx" + secrets.token_hex(8)


def new_original_id() -> str:
    return "gh_" + secrets.token_hex(6)


def new_secret() -> str:
    return secrets.token_hex(16)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> str:
    """A developer server Token (3-32 letters and digits)."""
    return secrets.token_hex(16)


def _pseudonym(label: str, value: str, length: int) -> str:
    key = hashlib.sha256(f"wechat-{label}\x00{settings.SECRET_KEY}".encode()).digest()
    digest = hmac.new(key, value.encode(), hashlib.sha256).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode()[: length - 1]


def openid_for(*, account_id: int, user_id: int) -> str:
    """28 characters of [A-Za-z0-9_-], starting with `o` (reference §7). It is stored
    with the follower, so it stays the same for ever, even if SECRET_KEY changes."""
    return _pseudonym("openid", f"{account_id}:{user_id}", 28)


def unionid_for(*, open_platform_id: str, user_id: int) -> str:
    """29 characters, the same for one user on every account of one Open Platform id."""
    return _pseudonym("unionid", f"{open_platform_id}:{user_id}", 29)
