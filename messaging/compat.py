"""Feature adaptation for old clients (seed 001 §11, 功能适配).

Clients declare their version at login. Versions before
MESSAGING_GROUP_MIN_CLIENT_VERSION know nothing of groups; rather than leave
their users out, the server presents a group to them as a 1:1 chat with the
group itself, and turns each group event into a text line such as
"Alice: hello" or "Bob invited Carol", which any client can show and answer.

Message kinds other apps add (messaging.services.kinds: red packets) reach
devices older than the kind's `min_client_version` the same way: as a text
message saying what it is ("[Red packet] Best wishes — open it in the latest
version"), with `adapted_from` naming the real kind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from messaging.services.kinds import message_kind_spec, message_kinds, system_event_describe
from messaging.wire import ConversationView, MessageView

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


def supports_kind(client_version: str, kind: str) -> bool:
    spec = message_kind_spec(kind)
    return spec is None or version_tuple(client_version) >= version_tuple(spec.min_client_version)


def supports_all_kinds(client_version: str) -> bool:
    """Whether the device shows every registered kind (nothing to adapt)."""
    version = version_tuple(client_version)
    return all(version >= version_tuple(spec.min_client_version) for spec in message_kinds())


def adapt_kind_message(message: MessageView) -> MessageView:
    """A message of a registered kind the device is too old for, as a text message."""
    spec = message_kind_spec(message["kind"])
    text = spec.describe(message["body"]) if spec is not None else "[Unsupported message]"
    adapted = message.copy()
    adapted["kind"] = "text"
    adapted["body"] = {"text": text}
    adapted["adapted_from"] = message["kind"]
    return adapted


def _describe(message: Mapping[str, Any], names: dict[int, str]) -> str:
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
    spec = message_kind_spec(kind)
    if spec is not None:
        return f"{name(message['sender'])}: {spec.describe(body)}"
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
    registered = system_event_describe(str(event))
    if registered is not None:
        return registered(body)
    return "The group changed"


def adapt_group_message(message: MessageView, names: dict[int, str]) -> MessageView:
    """A group event as a plain text message an old client can show."""
    return {
        **message,
        "kind": "text",
        "body": {"text": _describe(message, names)},
        "adapted_from": message["kind"],
        "recalled": False,
    }


def adapt_group_conversation(conversation: ConversationView) -> ConversationView:
    """A group as a 1:1 chat with the group itself (with every field a conversation has)."""
    return {
        **conversation,
        "kind": "direct",
        "name": f"[Group] {conversation['name']}",
        "peer": None,
        "adapted_from": "group",
    }
