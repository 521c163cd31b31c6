"""What operators see of replication: the outbox backlog, each peer's position and
lag, recent replay errors and parked entries (monitoring samples these; docs/deploy.md)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Min
from django.utils import timezone

from wechat_core import datacenters
from wechat_core.replication.models import (
    OutboxEntry,
    ParkedEntry,
    ReplayError,
    ReplayPosition,
)


@dataclass(frozen=True)
class PeerReplay:
    origin: str
    position: int
    # Write at the origin → applied here, of the last entry applied.
    lag_seconds: float
    # Since the last entry from this peer was applied (grows when it sends nothing).
    idle_seconds: float


@dataclass(frozen=True)
class ReplicationStatus:
    backlog: int  # outbox entries not yet confirmed by the broker
    oldest_unshipped_seconds: float
    peers: list[PeerReplay]
    errors_last_hour: int
    parked: int  # entries that failed every attempt, passed over, awaiting an operator


def replication_status(*, now: dt.datetime | None = None) -> ReplicationStatus:
    now = now or timezone.now()
    unshipped = OutboxEntry.objects.filter(shipped_at__isnull=True)
    oldest = unshipped.aggregate(oldest=Min("created_at"))["oldest"]
    positions = {row.origin: row for row in ReplayPosition.objects.all()}
    peers = []
    for origin in datacenters.peers():
        row = positions.get(origin)
        lag = idle = 0.0
        if row is not None and row.written_at and row.applied_at:
            lag = max(0.0, (row.applied_at - row.written_at).total_seconds())
            idle = max(0.0, (now - row.applied_at).total_seconds())
        peers.append(PeerReplay(origin, row.position if row else 0, lag, idle))
    return ReplicationStatus(
        backlog=unshipped.count(),
        oldest_unshipped_seconds=(now - oldest).total_seconds() if oldest else 0.0,
        peers=peers,
        errors_last_hour=ReplayError.objects.filter(
            created_at__gte=now - dt.timedelta(hours=1)
        ).count(),
        parked=ParkedEntry.objects.count(),
    )
