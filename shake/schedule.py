"""A round's live schedule, as every access process holds it (docs/shake.md "Live
control"): when it issues, whether it is paused or ended, and the control version
that produced it.

Computed from the round's row (`schedule_of`) and carried, signed, by the three
routes of a change: the Redis message, the database poll (the row itself) and the
clients' shake requests (`schedule_encode` / `schedule_decode`). The token holds
everything an access process needs to issue the round, so a process can apply it
without asking the database.

Staggered groups (seed 003 错峰): in a round with a stagger, users are dealt into
`groups` groups by a stable hash of the user (`stagger_group`), and group g may shake
from `starts + g * stagger` (`Schedule.opens_for`) to the round's end: the peak of a
round's first shakes is spread over minutes. Both numbers travel in the schedule, so
every process answers a user alike, without the database.

The start is the operator's start command if there was one, else the corrected
countdown, else the latest start (the countdown fallback: a round starts then even
if no command ever arrives). The end is the start plus the duration plus the time
spent paused, or the end command.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings

from shake.models import Round
from shake.signing import mac_check, mac_of


@dataclass(frozen=True, slots=True)
class Schedule:
    round_id: int
    version: int
    starts: float  # epoch seconds
    ends: float  # epoch seconds; while paused, the end if it resumed now
    paused: bool
    ended: bool
    issue_rate: int
    per_user_cap: int
    per_sponsor_cap: int
    slices: int
    # Staggered groups: seconds between consecutive groups' starts (0: none), and how
    # many groups (SHAKE_STAGGER_GROUPS when the schedule was computed). Defaults keep
    # tokens signed before they existed readable.
    stagger: int = 0
    groups: int = 1

    def running(self, now: float) -> bool:
        return self.starts <= now < self.ends and not self.paused

    def opens_for(self, user_id: int) -> float:
        """When this user's group may start shaking (epoch seconds): the round's start
        plus its group's stagger, never after the round's end."""
        if not self.stagger:
            return self.starts
        group = stagger_group(user_id=user_id, groups=self.groups)
        return min(self.starts + group * self.stagger, self.ends)

    def group_of(self, user_id: int) -> int:
        return stagger_group(user_id=user_id, groups=self.groups) if self.stagger else 0


def stagger_group(*, user_id: int, groups: int) -> int:
    """The user's group, 0 to groups - 1: a stable hash (the same in every process and
    after restarts; Python's own hash is salted per process), evenly spread."""
    if groups <= 1:
        return 0
    digest = hashlib.blake2b(b"shake-stagger:%d" % user_id, digest_size=8).digest()
    return int.from_bytes(digest, "big") % groups


def schedule_of(round_: Round, now: datetime | None = None) -> Schedule:
    starts = round_.started_at or round_.countdown_at or round_.latest_start
    paused = round_.paused_seconds
    if round_.paused_at is not None and now is not None:
        paused += max((now - round_.paused_at).total_seconds(), 0.0)
    ends = starts + timedelta(seconds=round_.duration_seconds + paused)
    if round_.ended_at is not None:
        ends = min(ends, round_.ended_at)
    return Schedule(
        round_id=round_.pk,
        version=round_.control_version,
        starts=starts.timestamp(),
        ends=ends.timestamp(),
        paused=round_.paused_at is not None,
        ended=round_.ended_at is not None,
        issue_rate=round_.issue_rate,
        per_user_cap=round_.per_user_cap,
        per_sponsor_cap=round_.per_sponsor_cap,
        slices=round_.slices,
        stagger=round_.stagger_seconds,
        groups=int(settings.SHAKE_STAGGER_GROUPS) if round_.stagger_seconds else 1,
    )


def round_window(round_: Round, now: datetime | None = None) -> tuple[datetime, datetime]:
    """When a round issues (its current schedule)."""
    schedule = schedule_of(round_, now)
    return (
        datetime.fromtimestamp(schedule.starts).astimezone(round_.latest_start.tzinfo),
        datetime.fromtimestamp(schedule.ends).astimezone(round_.latest_start.tzinfo),
    )


def schedule_encode(schedule: Schedule) -> str:
    """`<round>.<version>.<payload>.<mac>`: the round and version in clear, so a
    process compares them before it checks the signature (only a newer one is checked)."""
    body = json.dumps(asdict(schedule), separators=(",", ":"))
    payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    head = f"{schedule.round_id}.{schedule.version}.{payload}"
    return f"{head}.{mac_of('schedule|' + head)}"


def schedule_peek(token: object) -> tuple[int, int] | None:
    """The round and version a token claims (unchecked), or None."""
    if not isinstance(token, str) or len(token) > 2048 or not token.isascii():
        return None
    parts = token.split(".")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1])


def schedule_decode(token: object) -> Schedule | None:
    """The schedule if `token` is genuine, else None."""
    if schedule_peek(token) is None or not isinstance(token, str):
        return None
    head, _, mac = token.rpartition(".")
    if not mac_check("schedule|" + head, mac):
        return None
    payload = head.split(".")[2]
    try:
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        schedule = Schedule(**body)
    except (ValueError, TypeError, binascii.Error):
        return None
    if f"{schedule.round_id}.{schedule.version}" != ".".join(head.split(".")[:2]):
        return None
    return schedule
