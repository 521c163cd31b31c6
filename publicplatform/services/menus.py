"""Custom menus (自定义菜单, reference §4.7): validated on create, looked up on tap."""

from __future__ import annotations

from typing import Any

from publicplatform.exceptions import BadButtonCount, BadSubButtonCount, InvalidArgs
from publicplatform.models import OfficialAccount

BUTTON_TYPES = {
    "click",
    "view",
    "scancode_push",
    "scancode_waitmsg",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
    "media_id",
    "article_id",
    "miniprogram",
}
NAME_MAX_BYTES = {"top": 16, "sub": 60}


def _button(data: Any, level: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidArgs("invalid button: each button is an object")
    name = data.get("name")
    if not isinstance(name, str) or not name or len(name.encode()) > NAME_MAX_BYTES[level]:
        raise InvalidArgs(
            f"invalid button name size: 1-{NAME_MAX_BYTES[level]} bytes ({level}-level)"
        )
    if level == "top" and "sub_button" in data and data.get("type") is None:
        subs = data["sub_button"]
        if not isinstance(subs, list) or not 1 <= len(subs) <= 5:
            raise BadSubButtonCount()
        return {"name": name, "sub_button": [_button(sub, "sub") for sub in subs]}
    kind = data.get("type")
    if kind not in BUTTON_TYPES:
        raise InvalidArgs(f"invalid button type {kind!r}")
    button: dict[str, Any] = {"type": kind, "name": name}
    if kind == "view":
        url = data.get("url")
        if (
            not isinstance(url, str)
            or not url.startswith(("http://", "https://"))
            or len(url) > 1024
        ):
            raise InvalidArgs("invalid view url: an http(s) URL of at most 1024 bytes")
        button["url"] = url
    elif kind in ("media_id", "article_id"):
        button[kind] = str(data.get(kind, ""))[:128]
    elif kind == "miniprogram":
        button.update({k: str(data.get(k, ""))[:1024] for k in ("url", "appid", "pagepath")})
    else:
        key = data.get("key")
        if not isinstance(key, str) or not key or len(key.encode()) > 128:
            raise InvalidArgs("invalid button key: 1-128 bytes")
        button["key"] = key
    return button


def menu_clean(data: Any) -> list[dict[str, Any]]:
    buttons = data.get("button") if isinstance(data, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise BadButtonCount()
    return [_button(button, "top") for button in buttons]


def menu_set(*, account: OfficialAccount, data: Any) -> list[dict[str, Any]]:
    menu = menu_clean(data)
    account.menu = menu
    account.save(update_fields=["menu"])
    return menu


def menu_delete(*, account: OfficialAccount) -> None:
    account.menu = []
    account.save(update_fields=["menu"])


def menu_find(*, menu: list[dict[str, Any]], kind: str, value: str) -> dict[str, Any] | None:
    """The button of this kind whose key (click) or URL (view) is `value`."""
    field = "url" if kind == "view" else "key"
    for button in menu:
        for candidate in [button, *button.get("sub_button", [])]:
            if candidate.get("type") == kind and candidate.get(field) == value:
                return dict(candidate)
    return None
