"""Where traffic goes when a campus is blocked (wechat_core.campuses): the
endpoints offered to moved clients, and those the server's own calls may use."""

from __future__ import annotations

from typing import Any

import pytest

from wechat_core import breakers
from wechat_core.campuses import endpoints_elsewhere, move_frame, usable_endpoints
from wechat_core.models import Campus, DataCenter
from wechat_core.services import campus_save
from wechat_core.types import CampusState

pytestmark = pytest.mark.django_db


def state(code: str, dc: str, *urls: str, blocked: bool = False) -> CampusState:
    return CampusState(code=code, datacenter=dc, name=code, blocked=blocked, endpoints=urls)


def test_endpoints_elsewhere__open_campuses_only__own_data_centre_first__no_repeats() -> None:
    campuses = [
        state("hk-a", "hk", "wss://hk-a/ws"),
        state("sh-c", "sh", "wss://sh-c/ws", "wss://shared/ws"),
        state("sh-a", "sh", "wss://sh-a/ws"),
        state("sh-b", "sh", "wss://sh-b/ws", "wss://shared/ws"),
        state("sh-d", "sh", "wss://sh-d/ws", blocked=True),
    ]
    assert endpoints_elsewhere(campuses, "sh-b") == (
        "wss://sh-a/ws", "wss://sh-c/ws", "wss://shared/ws", "wss://hk-a/ws",
    )  # fmt: skip


def test_move_frame__says_where_why_and_how(settings: Any) -> None:
    settings.CAMPUS, settings.CAMPUS_MOVE_SPREAD_SECONDS = "sh-b", 2.5
    frame = move_frame(["wss://sh-a/ws"])
    assert frame == {
        "type": "move", "reason": "campus_blocked", "campus": "sh-b",
        "endpoints": ["wss://sh-a/ws"], "retry": {"spread_seconds": 2.5, "resume": "sync_key"},
    }  # fmt: skip


def test_usable_endpoints__skip_blocked_campuses_and_ejected_instances(settings: Any) -> None:
    settings.BREAKER_FAILURES = 1
    shanghai, _ = DataCenter.objects.get_or_create(code="sh", defaults={"name": "Shanghai"})
    for code, blocked in (("sh-a", False), ("sh-b", True), ("sh-c", False)):
        campus_save(
            campus=Campus(code=code, datacenter=shanghai, name=code,
                          endpoints=f"https://{code}.example.com/internal", blocked=blocked),
            actor=None,
        )  # fmt: skip
    urls = [f"https://{code}.example.com/internal/x" for code in ("sh-a", "sh-b", "sh-c")]
    assert usable_endpoints("campus", urls) == [urls[0], urls[2]]

    def fail() -> None:
        raise OSError("down")

    with pytest.raises(OSError, match="down"):
        breakers.shielded("campus", breakers.instance_of(urls[0]), fail)
    assert usable_endpoints("campus", urls) == [urls[2]]
