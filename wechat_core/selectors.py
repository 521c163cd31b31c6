"""Reads of the topology, served from a per-process snapshot (see sharedstate)."""

from __future__ import annotations

from django.conf import settings

from wechat_core.models import Campus
from wechat_core.sharedstate import SharedSnapshot
from wechat_core.types import CampusState, Placement


def _load_campuses() -> dict[str, CampusState]:
    return {
        campus.code: CampusState(
            code=campus.code,
            datacenter=campus.datacenter_id,
            name=campus.name,
            blocked=campus.blocked,
            endpoints=tuple(campus.endpoint_list),
        )
        for campus in Campus.objects.all()
    }


campus_snapshot: SharedSnapshot[dict[str, CampusState]] = SharedSnapshot("campuses", _load_campuses)


def campus_list() -> list[CampusState]:
    return sorted(campus_snapshot.get().values(), key=lambda c: (c.datacenter, c.code))


def campus_is_blocked(*, code: str) -> bool:
    """Whether the campus is blocked, as this process's copy of the switches says."""
    state = campus_snapshot.get().get(code)
    return state is not None and state.blocked


def local_placement() -> Placement:
    """The data centre and campus this process serves, from settings."""
    return Placement(datacenter=settings.DATACENTER, campus=settings.CAMPUS)
