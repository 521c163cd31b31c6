"""Blocking a looping client (monitoring.trafficguard decides when)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from monitoring.models import GuardBlock
from monitoring.trafficguard import BLOCKS, GUARD_BLOCKS


def guard_block(*, identity: str, endpoint: str, repeats: int) -> int:
    """Record the block (every process learns it after commit); returns its seconds."""
    seconds = settings.MONITORING_GUARD_BLOCK_SECONDS
    with transaction.atomic():
        GuardBlock.objects.create(
            identity=identity[:80],
            endpoint=endpoint[:160],
            repeats=repeats,
            until=timezone.now() + timedelta(seconds=seconds),
        )
        BLOCKS.invalidate_on_commit()
    GUARD_BLOCKS.inc(endpoint)
    return seconds


@transaction.atomic
def guard_unblock(*, identity: str) -> int:
    """End a client's blocks early (operators, from the admin)."""
    updated = GuardBlock.objects.filter(identity=identity, until__gt=timezone.now()).update(
        until=timezone.now()
    )
    BLOCKS.invalidate_on_commit()
    return updated
