"""The storage of a winning grab's transaction, chosen once by database vendor.

A hot packet's winners go one after another through its row lock, so the time
the lock is held bounds how fast they go (docs/performance.md). On PostgreSQL
one statement locks the packet, decides the share, moves the remainder and
inserts the grab (`PostgresGrabStore`); elsewhere (SQLite, the embedded mode)
the ORM does the same in four (`PortableGrabStore`). Both take the random draw
from the caller (`draw`: a share of a lucky packet is `lucky_draw` with
`randbelow(n) = draw % n`), so tests/redpackets/test_grabstore_parity.py holds
them to the same answers.

Called inside the caller's transaction; a second grab by the same member raises
IntegrityError (unique (packet, user)) from either.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from django.db import connection

from redpackets.models import CreditState, Grab, Packet, PacketKind, PacketState
from redpackets.splitting import equal_share, lucky_draw

PACKET = Packet._meta.db_table
GRAB = Grab._meta.db_table


@dataclass(frozen=True, slots=True)
class Taken:
    """What the transaction did: `grab` when a share was taken, else why not
    (`outcome`: finished or expired); `packet` as it is now."""

    outcome: str
    packet: Packet
    grab: Grab | None


def new_draw() -> int:
    # 62 random bits: `draw % n` is uniform in 0..n-1 within 2**-30 for any share.
    return secrets.randbits(62)


class GrabStore(Protocol):
    def take(self, packet: Packet, user_id: int, *, now: datetime, draw: int) -> Taken:
        """Lock the packet, and if it is open and not expired at `now`, take its
        next share for `user_id` (`packet` is the caller's copy: its fields are
        brought up to date)."""
        ...


class PortableGrabStore:
    def take(self, packet: Packet, user_id: int, *, now: datetime, draw: int) -> Taken:
        locked = Packet.objects.select_for_update(no_key=True).get(pk=packet.pk)
        if locked.state == PacketState.EXPIRED or locked.expires_at <= now:
            return Taken("expired", locked, None)
        if locked.state != PacketState.OPEN or locked.remaining_shares == 0:
            return Taken("finished", locked, None)
        index = locked.shares - locked.remaining_shares
        if locked.kind == PacketKind.EQUAL:
            amount = equal_share(locked.total_amount, locked.shares, index)
        else:
            amount = lucky_draw(
                locked.remaining_amount, locked.remaining_shares, randbelow=lambda n: draw % n
            )
        grab = Grab.objects.create(
            packet=locked, user_id=user_id, share_index=index, amount=amount, created_at=now
        )
        locked.remaining_shares -= 1
        locked.remaining_amount -= amount
        changed = ["remaining_shares", "remaining_amount"]
        if locked.remaining_shares == 0:
            locked.state, locked.finished_at = PacketState.FINISHED, now
            changed += ["state", "finished_at"]
        locked.save(update_fields=changed)
        return Taken("grabbed", locked, grab)


# The share's amount as redpackets.splitting decides it: equal_share, or
# lucky_draw with randbelow(n) = draw % n (the last share takes the rest).
_TAKE = f"""
WITH p AS (
  SELECT id, kind, shares, total_amount, remaining_shares, remaining_amount, state,
         expires_at, finished_at, refunded_amount, message_id
  FROM {PACKET} WHERE id = %(packet)s
  FOR NO KEY UPDATE
), d AS (
  SELECT id, shares - remaining_shares AS share_index,
    CASE
      WHEN kind = %(equal)s THEN total_amount / shares
        + CASE WHEN shares - remaining_shares < total_amount %% shares THEN 1 ELSE 0 END
      WHEN remaining_shares = 1 THEN remaining_amount
      ELSE 1 + %(draw)s %% GREATEST(
        LEAST(2 * remaining_amount / remaining_shares, remaining_amount - (remaining_shares - 1)),
        1)
    END AS amount
  FROM p
  WHERE state = %(open)s AND remaining_shares > 0 AND expires_at > %(now)s
), u AS (
  UPDATE {PACKET} t
  SET remaining_shares = t.remaining_shares - 1,
      remaining_amount = t.remaining_amount - d.amount,
      state = CASE WHEN t.remaining_shares = 1 THEN %(finished)s ELSE t.state END,
      finished_at = CASE WHEN t.remaining_shares = 1 THEN %(now)s ELSE t.finished_at END
  FROM d WHERE t.id = d.id
  RETURNING t.remaining_shares, t.remaining_amount, t.state, t.finished_at
), g AS (
  INSERT INTO {GRAB} (packet_id, user_id, share_index, amount, created_at, credit_state)
  SELECT d.id, %(user)s, d.share_index, d.amount, %(now)s, %(arriving)s FROM d
  RETURNING id, share_index, amount
)
SELECT p.remaining_shares, p.remaining_amount, p.state, p.expires_at, p.finished_at,
       p.refunded_amount, p.message_id,
       g.id, g.share_index, g.amount,
       u.remaining_shares, u.remaining_amount, u.state, u.finished_at
FROM p LEFT JOIN g ON TRUE LEFT JOIN u ON TRUE
"""  # noqa: S608 - table names are ours


class PostgresGrabStore:
    def take(self, packet: Packet, user_id: int, *, now: datetime, draw: int) -> Taken:
        params: dict[str, Any] = {
            "packet": packet.pk, "user": user_id, "now": now, "draw": draw,
            "equal": PacketKind.EQUAL.value, "open": PacketState.OPEN.value,
            "finished": PacketState.FINISHED.value, "arriving": CreditState.ARRIVING.value,
        }  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(_TAKE, params)
            row = cursor.fetchone()
        if row is None:
            raise Packet.DoesNotExist()
        (left, left_amount, state, expires_at, finished_at, refunded, message_id,
         grab_id, index, amount, u_left, u_left_amount, u_state, u_finished_at) = row  # fmt: skip
        packet.expires_at, packet.refunded_amount, packet.message_id = (
            expires_at, refunded, message_id,
        )  # fmt: skip
        if grab_id is None:
            packet.remaining_shares, packet.remaining_amount = left, left_amount
            packet.state, packet.finished_at = state, finished_at
            expired = state == PacketState.EXPIRED or expires_at <= now
            return Taken("expired" if expired else "finished", packet, None)
        packet.remaining_shares, packet.remaining_amount = u_left, u_left_amount
        packet.state, packet.finished_at = u_state, u_finished_at
        grab = Grab(
            id=grab_id, packet=packet, user_id=user_id, share_index=index, amount=amount,
            created_at=now, credit_state=CreditState.ARRIVING,
        )  # fmt: skip
        return Taken("grabbed", packet, grab)


_chosen: dict[str, GrabStore] = {}


def grab_store() -> GrabStore:
    """PostgreSQL's own statement on PostgreSQL, else the ORM's."""
    vendor = connection.vendor
    chosen = _chosen.get(vendor)
    if chosen is None:
        chosen = _chosen[vendor] = (
            PostgresGrabStore() if vendor == "postgresql" else PortableGrabStore()
        )
    return chosen
