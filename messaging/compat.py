"""Feature adaptation for old clients (seed 001 §11, 功能适配).

Clients declare their version at login. Versions before
MESSAGING_GROUP_MIN_CLIENT_VERSION know nothing of groups; rather than leave
their users out, the server presents a group to them as a 1:1 chat with the
group itself, and turns each group event into a text line such as
"Alice: hello" or "Bob invited Carol", which any client can show and answer.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


def version_tuple(version: str) -> tuple[int, int, int]:
    match = _VERSION.match(version)
    if match is None:
        return (0, 0, 0)
    major, minor, patch = (int(part) for part in match.groups())
    return (major, minor, patch)


def supports_groups(client_version: str) -> bool:
    return version_tuple(client_version) >= version_tuple(
        settings.MESSAGING_GROUP_MIN_CLIENT_VERSION
    )


def _describe(message: dict[str, Any], names: dict[int, str]) -> str:
    body, kind = message["body"], message["kind"]

    def name(user_id: Any) -> str:
        return names.get(int(user_id), f"user {user_id}") if user_id is not None else "someone"

    if message.get("recalled"):
        return f"{name(message['sender'])} recalled a message"
    if kind == "text":
        return f"{name(message['sender'])}: {body.get('text', '')}"
    if kind in ("image", "file"):
        label = "[Image]" if kind == "image" else f"[File: {body.get('name', '')}]"
        caption = f" {body['text']}" if body.get("text") else ""
        return f"{name(message['sender'])}: {label}{caption}"
    if kind == "recall":
        return f"{name(message['sender'])} recalled a message"
    event = body.get("event")
    if event == "created":
        return f"{name(message['sender'])} created the group \u201c{body.get('name', '')}\u201d"
    if event == "joined":
        invited = ", ".join(name(user) for user in body.get("users", []))
        return f"{name(body.get('by'))} invited {invited}"
    if event in ("left", "removed"):
        return f"{name(body.get('user'))} {'left' if event == 'left' else 'was removed'}"
    if event == "renamed":
        return f"{name(body.get('by'))} renamed the group \u201c{body.get('name', '')}\u201d"
    if event == "announcement":
        return f"Announcement: {body.get('text', '')}"
    return "The group changed"


def adapt_group_message(message: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    """A group event as a plain text message an old client can show."""
    return {
        **message,
        "kind": "text",
        "body": {"text": _describe(message, names)},
        "adapted_from": message["kind"],
        "recalled": False,
    }


def adapt_group_conversation(conversation: dict[str, Any]) -> dict[str, Any]:
    """A group as a 1:1 chat with the group itself."""
    return {
        "id": conversation["id"],
        "kind": "direct",
        "name": f"[Group] {conversation['name']}",
        "peer": None,
        "adapted_from": "group",
    }
