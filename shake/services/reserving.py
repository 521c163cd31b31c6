"""The durable side of issuing (called by the access process's background thread,
never on the shake path; docs/shake.md "Never issued twice").

1. `prizes_reserve`: a batch of pool prizes of one slice becomes `reserved` by one
   process instance, committed before any of it is handed out. Two instances never
   get the same prize (row locks, SKIP LOCKED, and the state condition).
2. `prizes_issued_record`: the instance writes whom it handed each prize to.
3. `prizes_recycle`: once a round's open window is over, the prizes still reserved
   or issued-unopened under an instance that is gone go back to the pool as NEW
   prizes (new ids, new signatures); the old rows are closed as `recycled`. An id
   handed out before a crash can never be handed out again, and an old win can no
   longer be opened (its window is over), so no prize is paid twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from shake.models import Prize, PrizeState, Round
from shake.schedule import round_window
from shake.signing import prize_sign
from wechat_core.cacheclient import redis_connect


@dataclass(frozen=True, slots=True)
class HeldPrize:
    """A reserved prize as an access process holds it in memory."""

    prize_id: int
    round_id: int
    amount: int
    kind: str
    sponsor_id: int
    extra_shares: int


def prizes_reserve(*, round_id: int, slice_: int, owner: str, count: int) -> list[HeldPrize]:
    with transaction.atomic():
        ids = list(
            Prize.objects.select_for_update(skip_locked=True)
            .filter(round_id=round_id, slice=slice_, state=PrizeState.POOL)
            .order_by("id")
            .values_list("id", flat=True)[:count]
        )
        if not ids:
            return []
        Prize.objects.filter(pk__in=ids, state=PrizeState.POOL).update(
            state=PrizeState.RESERVED, reserved_by=owner, reserved_at=timezone.now()
        )
        rows = Prize.objects.filter(pk__in=ids).order_by("id")
        return [
            HeldPrize(
                prize_id=row.pk,
                round_id=row.round_id,
                amount=row.amount,
                kind=row.kind,
                sponsor_id=row.sponsor_id,
                extra_shares=row.extra_shares,
            )
            for row in rows
        ]


def prizes_issued_record(*, owner: str, issued: Iterable[tuple[int, int, datetime]]) -> int:
    """Record (prize id, winner, when) of prizes this owner handed out. A prize
    already opened (its winner was faster than this flush) keeps its state."""
    values = list(issued)
    if not values:
        return 0
    placeholders = ", ".join(["(%s::bigint, %s::bigint, %s::timestamptz)"] * len(values))
    params: list[int | datetime | str] = [item for triple in values for item in triple]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE shake_prize AS p
               SET state = CASE WHEN p.state = 'reserved' THEN 'issued' ELSE p.state END,
                   winner_id = v.winner, issued_at = v.at
              FROM (VALUES {placeholders}) AS v(id, winner, at)
             WHERE p.id = v.id AND p.reserved_by = %s
               AND p.state IN ('reserved', 'issued', 'opened')
            """,  # noqa: S608  (only placeholders are formatted in)
            [*params, owner],
        )
        return int(cursor.rowcount)


def prizes_recycle(*, live_owners: set[str], now: datetime | None = None) -> int:
    """Return to the pool (as new prizes) what dead owners held and nobody opened,
    for rounds whose open window is over. Returns how many were recycled."""
    now = now or timezone.now()
    recycled = 0
    for round_ in Round.objects.filter(activity__approved_at__isnull=False):
        _, ends = round_window(round_, now)
        if ends + timedelta(seconds=settings.SHAKE_OPEN_SECONDS) > now:
            continue
        with transaction.atomic():
            stale = list(
                Prize.objects.select_for_update(skip_locked=True)
                .filter(round=round_, state__in=[PrizeState.RESERVED, PrizeState.ISSUED])
                .exclude(reserved_by__in=live_owners)
            )
            for old in stale:
                new = Prize.objects.create(
                    round=round_,
                    slice=old.slice,
                    kind=old.kind,
                    amount=old.amount,
                    sponsor_id=old.sponsor_id,
                    extra_shares=old.extra_shares,
                    extra_amount=old.extra_amount,
                    business_id=old.business_id,
                    coupon=old.coupon,
                )
                new.signature = prize_sign(
                    prize_id=new.pk,
                    round_id=round_.pk,
                    amount=new.amount,
                    kind=new.kind,
                    sponsor_id=new.sponsor_id,
                    extra_shares=new.extra_shares,
                    extra_amount=new.extra_amount,
                )
                new.save(update_fields=["signature"])
                old.state = PrizeState.RECYCLED
                old.recycled_as = new
                old.save(update_fields=["state", "recycled_as"])
                recycled += 1
    return recycled


def registry_owners() -> set[str] | None:
    """The owners of the live access processes (their registry slots in Redis), or None
    when the registry cannot be read (then nobody's reservations may be recycled)."""
    if not settings.REDIS_URL:
        return None
    import redis

    client = redis_connect(settings.REDIS_URL, timeout=2)
    try:
        slots = int(settings.SHAKE_SLOTS) * 8
        holders = client.mget([f"{settings.SHAKE_REGISTRY}:slot:{n}" for n in range(slots)])
    except redis.RedisError:
        return None
    finally:
        client.close()
    return {holder.decode() for holder in holders if isinstance(holder, bytes)}


def prizes_recycle_now() -> int:
    """The beat's recycling pass: only when the registry says who is live."""
    owners = registry_owners()
    if owners is None:
        return 0
    return prizes_recycle(live_owners=owners)
