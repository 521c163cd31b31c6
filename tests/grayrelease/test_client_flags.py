"""How the Python client keeps flags (docs/protocol.md §8): the highest revision
wins, entries for other devices are ignored, a full set drops what it omits."""

from __future__ import annotations

from typing import Any

from messaging.client import ChatClient


def client_of_device(device_id: int, flags: dict[str, Any] | None = None) -> ChatClient:
    client = ChatClient(["ws://127.0.0.1:9/ws/sync"], "t1.1.x", flags=flags)
    client.device_id = device_id
    return client


def test_flag_entry__newer_applies_and_older_never_undoes_it() -> None:
    client = client_of_device(7, {"web.a": {"enabled": False, "revision": 2}})
    client.apply_flag_entry({"feature": "web.a", "revision": 4, "devices": {"7": True}})
    client.apply_flag_entry({"feature": "web.a", "revision": 3, "devices": {"7": False}})
    assert client.flags["web.a"] == {"enabled": True, "revision": 4}
    assert client.flag_enabled("web.a")


def test_flag_entry__for_another_device__is_ignored() -> None:
    client = client_of_device(7)
    client.apply_flag_entry({"feature": "web.b", "revision": 1, "devices": {"8": True}})
    assert not client.flag_enabled("web.b")
    assert "web.b" not in client.flags


def test_full_set__drops_omitted_features_and_keeps_newer_values() -> None:
    client = client_of_device(7, {"web.gone": {"enabled": True, "revision": 1}})
    client.apply_flag_entry({"feature": "web.c", "revision": 5, "devices": {"7": True}})
    # a hello from a process whose copy is a moment older
    client.apply_flags({"web.c": {"enabled": False, "revision": 4}})
    assert client.flags == {"web.c": {"enabled": True, "revision": 5}}
