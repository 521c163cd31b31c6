"""The access layer's shake engine: one per ASGI process, in memory (docs/shake.md).

The shake path (`Engine.shake`) touches no database and makes no cross-process
call, except for a winner (at most the issue rate), whose caps are checked once
in Redis with a short timeout (best effort: a failure lets the win stand). It
reads the round from memory, the user's wins from the signed record the client
carried plus this process's cache, takes a token from a bucket refilled every
100 ms with this process's share of the round's rate, pops a prize it has
reserved, signs the win and answers.

Everything else is the background thread's: the heartbeat and slot claim in the
registry (Redis), reloading the rounds, reserving the next batch (durable before
it is handed out) and recording what was issued.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings
from django.db import close_old_connections, connections
from django.db.models import Q
from django.utils import timezone

from shake.models import Activity, QuotaConfig, Round, Sponsor
from shake.quotas import QUOTA_TAKE, QuotaTable, class_of
from shake.schedule import Schedule, schedule_decode, schedule_encode, schedule_of, schedule_peek
from shake.selectors import manifest_of
from shake.services.assets import Manifest
from shake.services.reserving import HeldPrize, prizes_issued_record, prizes_reserve
from shake.signing import Record, record_decode, record_encode, win_sign
from wechat_core.cacheclient import redis_connect

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.1
# Rounds are loaded this long before they start (their first batch reserved ahead), and
# every _SLOW_LOAD_SECONDS when the poll route of live control is off.
_LOOKAHEAD_SECONDS = 30.0
# A draw looks this far into the held queue for a prize the user may win, and tries
# this many classes before it gives up (quotas: seed 003's fallback to other prizes).
_DRAW_SCAN = 256
_DRAW_ATTEMPTS = 8
_SLOW_LOAD_SECONDS = 10.0
_LOCAL_CACHE_USERS = 100_000

# Adds one win for a user in a round and checks both caps, atomically; undoes and
# answers 0 if either cap would be passed. KEYS: user hash; ARGV: sponsor, caps, ttl.
_CAP_CHECK = """
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local s = redis.call('HINCRBY', KEYS[1], 's' .. ARGV[1], 1)
if n > tonumber(ARGV[2]) or s > tonumber(ARGV[3]) then
  redis.call('HINCRBY', KEYS[1], 'n', -1)
  redis.call('HINCRBY', KEYS[1], 's' .. ARGV[1], -1)
  if n > tonumber(ARGV[2]) then return 0 end
  return 2
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""
# The cross-process check's answers: the win may go ahead, the user has all their
# packets, or only this sponsor's (the user may still win another sponsor's).
CAP_OK, CAP_USER, CAP_SPONSOR = 1, 0, 2
# A win of a sponsor's packet that another process issued (its prize id unknown
# here): remembered so this process stops drawing that sponsor for the user.
WON_ELSEWHERE = 0
# Claims a free slot or renews one's own. KEYS[1]: slot; ARGV: owner, ttl ms.
_SLOT_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class SponsorView:
    sponsor_id: int
    name: str
    logo_url: str
    background: str


@dataclass(frozen=True, slots=True)
class WinAnswer:
    prize: HeldPrize
    signature: str


@dataclass(frozen=True, slots=True)
class ShakeAnswer:
    round_id: int | None
    win: WinAnswer | None
    record: str | None
    capped: bool
    interval: int
    # The schedule of the round now issuing (or paused), else of the next one, and its
    # signed token, which the client sends back (the third route of live control).
    schedule: Schedule | None = None
    schedule_token: str | None = None
    # The throttle tier the interval was set by (seed 004: "you are limited to tier
    # N"): 0 normal, 1 the process is busy and hands out the longer interval.
    tier: int = 0
    # Staggered groups (seed 003 错峰): the user's group in the schedule's round and when
    # it may start shaking (epoch seconds); `not_yet`: this shake came before that, so
    # it was refused without a draw ("come back at `opens`", the interval says when).
    group: int = 0
    opens: float | None = None
    not_yet: bool = False


@dataclass
class _Bucket:
    tick: int = -1
    tokens: float = 0.0


@dataclass
class _RoundState:
    view: Schedule
    token: str
    # Lottery quotas (the newest version loaded, swapped whole), the classes found over
    # quota in a second (class → that second), and the fallback counts without Redis.
    quotas: QuotaTable = field(default_factory=QuotaTable)
    blocked: dict[str, int] = field(default_factory=dict)
    local_quota: dict[tuple[str, int], int] = field(default_factory=dict)
    held: deque[HeldPrize] = field(default_factory=deque)
    bucket: _Bucket = field(default_factory=_Bucket)
    reserving: bool = False
    exhausted: bool = False


class Engine:
    def __init__(self) -> None:
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.slot: int | None = None
        self.live_processes = 1
        self.rounds: dict[int, _RoundState] = {}
        self.sponsors: dict[int, SponsorView] = {}
        # Sponsor assets (docs/shake.md): each loaded activity's manifest, reloaded when
        # its version moves, so the schedule answer and the reports read no database.
        self.manifests: dict[int, Manifest] = {}
        self._round_activity: dict[int, int] = {}
        self._lock = threading.Lock()
        # (round, user) → wins this process knows of (bounded: oldest users dropped).
        self._wins: OrderedDict[tuple[int, int], frozenset[tuple[int, int]]] = OrderedDict()
        self._capped: set[tuple[int, int]] = set()
        self._issued: list[tuple[int, int, datetime]] = []
        self._shakes_second = 0
        self._shakes_count = 0
        self._shakes_rate = 0
        self._redis: redis.Redis | None = (
            redis_connect(settings.REDIS_URL, timeout=settings.SHAKE_REDIS_TIMEOUT_SECONDS)
            if settings.REDIS_URL
            else None
        )
        self._registry: redis.Redis | None = (
            redis_connect(settings.REDIS_URL, timeout=2) if settings.REDIS_URL else None
        )
        self._last_beat = self._last_load = self._last_flush = 0.0
        self._routes = frozenset(settings.SHAKE_CONTROL_ROUTES)
        self._activities: set[int] = set()  # whose sponsors are loaded
        self._versions: dict[int, int] = {}  # the last schedule version taken, per round
        self._pubsub: redis.client.PubSub | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shake-engine", daemon=True)
        self._ready = threading.Event()

    # --- The shake path ---------------------------------------------------------------

    def shake(
        self, *, user_id: int, record_token: object, schedule_token: object = None
    ) -> ShakeAnswer:
        now = time.time()
        self._count_shake(now)
        if schedule_token is not None and "client" in self._routes:
            self.schedule_apply_token(schedule_token)
        interval, tier = self._throttle()
        state = self._current(now)
        if state is None:
            upcoming = self._next(now)
            if upcoming is None:
                return ShakeAnswer(None, None, None, False, interval, tier=tier)
            view = upcoming.view
            return ShakeAnswer(
                None, None, None, False, interval, view, upcoming.token, tier,
                group=view.group_of(user_id), opens=view.opens_for(user_id),
            )  # fmt: skip
        opens = state.view.opens_for(user_id)
        if now < opens:
            # Not this user's group's turn yet (staggered start): refused before the
            # record, the token and the draw, at the cost of a hash.
            view = state.view
            return ShakeAnswer(
                view.round_id, None, None, False, max(math.ceil(opens - now), 1), view,
                state.token, tier, group=view.group_of(user_id), opens=opens, not_yet=True,
            )  # fmt: skip
        answer = self._shake_in(state, now, user_id, record_token, interval, tier)
        if state.view.stagger:  # (unstaggered: group 0, opening at the round's start)
            answer = replace(answer, group=state.view.group_of(user_id), opens=opens)
        return answer

    def schedule_now(self, *, user_id: int) -> ShakeAnswer:
        """The round issuing now (or else the next one), when this user's group may
        shake in it, and the interval, as a shake would answer them, without shaking:
        the page's countdown before its first shake (GET /api/shake/schedule). Not
        counted as a shake."""
        now = time.time()
        interval, tier = self._throttle()
        state = self._current(now)
        current = state is not None
        state = state or self._next(now)
        if state is None:
            return ShakeAnswer(None, None, None, False, interval, tier=tier)
        view = state.view
        round_id = view.round_id if current else None
        return ShakeAnswer(
            round_id, None, None, False, interval, view, state.token, tier,
            group=view.group_of(user_id), opens=view.opens_for(user_id),
        )  # fmt: skip

    def _shake_in(
        self,
        state: _RoundState,
        now: float,
        user_id: int,
        record_token: object,
        interval: int,
        tier: int,
    ) -> ShakeAnswer:
        view, token = state.view, state.token
        key = (view.round_id, user_id)
        carried = record_decode(record_token, round_id=view.round_id, user_id=user_id)
        with self._lock:
            wins = self._wins.get(key, frozenset()) | (carried.wins if carried else frozenset())
            record = Record(view.round_id, user_id, wins)
            nothing = ShakeAnswer(
                view.round_id, None, record_encode(record), False, interval, view, token, tier
            )
            if len(wins) >= view.per_user_cap or key in self._capped:
                return ShakeAnswer(
                    view.round_id, None, nothing.record, True, interval, view, token, tier
                )
            if view.paused or not self._take_token(state, now):
                return nothing
        prize = self._draw_within_quotas(state, record, int(now))
        if prize is None:
            with self._lock:
                state.bucket.tokens += 1
            return nothing
        verdict = self._cross_process_check(view, user_id, prize.sponsor_id)
        if verdict != CAP_OK:
            with self._lock:
                state.held.appendleft(prize)
                state.bucket.tokens += 1
                if verdict == CAP_USER:
                    self._capped.add(key)
                else:  # only this sponsor: the user may still win the others'
                    self._remember(key, wins | {(WON_ELSEWHERE, prize.sponsor_id)})
            capped = verdict == CAP_USER
            return ShakeAnswer(
                view.round_id, None, nothing.record, capped, interval, view, token, tier
            )
        won = Record(view.round_id, user_id, wins | {(prize.prize_id, prize.sponsor_id)})
        with self._lock:
            self._remember(key, won.wins)
            self._issued.append((prize.prize_id, user_id, datetime.fromtimestamp(now, tz=UTC)))
        signature = win_sign(
            prize_id=prize.prize_id,
            round_id=prize.round_id,
            user_id=user_id,
            amount=prize.amount,
            sponsor_id=prize.sponsor_id,
        )
        # The win that reaches the cap says so: the client stops without asking again.
        return ShakeAnswer(
            view.round_id,
            WinAnswer(prize, signature),
            record_encode(won),
            len(won.wins) >= view.per_user_cap,
            interval,
            view,
            token,
            tier,
        )

    def _current(self, now: float) -> _RoundState | None:
        """The round issuing now, or paused (a paused round's end moves on)."""
        for state in self.rounds.values():
            view = state.view
            if view.starts <= now and (now < view.ends or (view.paused and not view.ended)):
                return state
        return None

    def _next(self, now: float) -> _RoundState | None:
        """The next round to start (its countdown), if this process has it loaded."""
        waiting = [s for s in self.rounds.values() if s.view.starts > now and not s.view.ended]
        return min(waiting, key=lambda s: s.view.starts, default=None)

    # --- Live control: a round's schedule, from any of the three routes --------------

    def schedule_apply(self, schedule: Schedule, token: str | None = None) -> bool:
        """Take a round's schedule if it is newer than the one held (or new); True if
        it was taken. A round learnt this way is issued like a loaded one."""
        with self._lock:
            state = self.rounds.get(schedule.round_id)
            if state is not None and schedule.version <= state.view.version:
                return False
            # A round dropped from memory (over) keeps its last version here, so an old
            # token a client replays cannot bring it back.
            if schedule.version < self._versions.get(schedule.round_id, 0):
                return False
            self._versions[schedule.round_id] = schedule.version
            token = token or schedule_encode(schedule)
            if state is None:
                self.rounds[schedule.round_id] = _RoundState(schedule, token)
            else:
                if state.view.starts != schedule.starts:
                    state.bucket = _Bucket()  # its ticks count from the new start
                state.view, state.token = schedule, token
        return True

    def schedule_apply_token(self, token: object) -> bool:
        """A signed schedule from a client or the Redis message: checked only when it
        claims a newer version than the one held (the common case costs a split)."""
        claimed = schedule_peek(token)
        if claimed is None:
            return False
        state = self.rounds.get(claimed[0])
        if state is not None and claimed[1] <= state.view.version:
            return False
        if claimed[1] < self._versions.get(claimed[0], 0):
            return False
        schedule = schedule_decode(token)
        if schedule is None or not isinstance(token, str):
            return False
        return self.schedule_apply(schedule, token)

    def _take_token(self, state: _RoundState, now: float) -> bool:
        """A bucket refilled each 100 ms tick with this process's share of the round's
        rate, holding at most a few ticks' worth, so a second's packets spread over
        its ticks (seed 003)."""
        per_tick = state.view.issue_rate / max(self.live_processes, 1) * TICK_SECONDS
        tick = math.floor((now - state.view.starts) / TICK_SECONDS)
        bucket = state.bucket
        if tick != bucket.tick:
            # The bucket holds at most SHAKE_BUCKET_TICKS ticks' worth: a tick whose
            # shakes came late passes its tokens on to the next few (requests arrive in
            # clumps), but an idle stretch never saves up a burst.
            elapsed = tick - bucket.tick if bucket.tick >= 0 else 1
            capacity = per_tick * settings.SHAKE_BUCKET_TICKS + 0.999_999
            bucket.tokens = min(bucket.tokens + per_tick * elapsed, capacity)
            bucket.tick = tick
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False

    def _draw_within_quotas(
        self, state: _RoundState, record: Record, second: int
    ) -> HeldPrize | None:
        """Draw a prize whose class is within its quota this second; a class over quota
        is skipped for the rest of the second and the draw falls back to the others,
        until nothing is left (seed 003)."""
        for _ in range(_DRAW_ATTEMPTS):
            with self._lock:
                prize = self._draw(state, record, state.view.per_sponsor_cap, second)
                quotas = state.quotas  # one version for this draw (double buffer)
            if prize is None:
                return None
            prize_class = class_of(prize.kind, prize.sponsor_id)
            limit = quotas.limit(prize_class)
            if limit is None or self._quota_take(state, prize_class, limit, second):
                return prize
            with self._lock:
                state.held.appendleft(prize)
                state.blocked[prize_class] = second
        return None

    def _draw(
        self, state: _RoundState, record: Record, sponsor_cap: int, second: int = -1
    ) -> HeldPrize | None:
        """The first held prize of a sponsor this user may still win and of a class
        not over quota this second (the others keep their place)."""
        blocked = {c for c, at in state.blocked.items() if at == second}
        for index, prize in enumerate(state.held):
            if index >= _DRAW_SCAN:
                return None
            if record.sponsor_count(prize.sponsor_id) >= sponsor_cap:
                continue
            if blocked and class_of(prize.kind, prize.sponsor_id) in blocked:
                continue
            del state.held[index]
            return prize
        return None

    def _quota_take(self, state: _RoundState, prize_class: str, limit: int, second: int) -> bool:
        """The conditional atomic counter (one Redis call); without Redis, each process
        takes its share of the quota on its own."""
        if limit <= 0:
            return False
        key = (prize_class, second)
        if self._redis is not None:
            try:
                return bool(
                    self._redis.eval(
                        QUOTA_TAKE,
                        1,
                        f"{settings.SHAKE_REGISTRY}:quota:{state.view.round_id}:{prize_class}:{second}",
                        limit,
                        5,
                    )
                )
            except redis.RedisError:
                pass
        share = math.ceil(limit / max(self.live_processes, 1))
        with self._lock:
            taken = state.local_quota.get(key, 0)
            if taken >= share:
                return False
            state.local_quota = {k: v for k, v in state.local_quota.items() if k[1] >= second}
            state.local_quota[key] = taken + 1
        return True

    def _cross_process_check(self, view: Schedule, user_id: int, sponsor_id: int) -> int:
        """CAP_OK, CAP_USER or CAP_SPONSOR, from the user's counts across processes."""
        if self._redis is None:
            return CAP_OK
        try:
            answer = self._redis.eval(
                _CAP_CHECK,
                1,
                f"{settings.SHAKE_REGISTRY}:caps:{view.round_id}:{user_id}",
                sponsor_id,
                view.per_user_cap,
                view.per_sponsor_cap,
                max(int(view.ends - time.time()) + settings.SHAKE_OPEN_SECONDS, 60),
            )
        except redis.RedisError:
            return CAP_OK  # best effort: shaking goes on without the check
        return int(answer)

    def _remember(self, key: tuple[int, int], wins: frozenset[tuple[int, int]]) -> None:
        self._wins[key] = wins
        self._wins.move_to_end(key)
        while len(self._wins) > _LOCAL_CACHE_USERS:
            self._wins.popitem(last=False)

    def _count_shake(self, now: float) -> None:
        second = int(now)
        if second != self._shakes_second:
            self._shakes_rate = self._shakes_count
            self._shakes_second, self._shakes_count = second, 0
        self._shakes_count += 1

    def _throttle(self) -> tuple[int, int]:
        """The interval to hand out and its tier, from this process's shakes in the
        last second it had any (the real-time load, seed 004)."""
        if self._shakes_rate > settings.SHAKE_BUSY_SHAKES_PER_SECOND:
            return int(settings.SHAKE_BUSY_INTERVAL_SECONDS), 1
        return int(settings.SHAKE_INTERVAL_SECONDS), 0

    # --- The background thread --------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def step(self, *, force: bool = False) -> None:
        """One pass of the background work (tests call it directly, `force`d)."""
        now = time.monotonic()
        if force or now - self._last_beat >= settings.SHAKE_HEARTBEAT_SECONDS:
            self._heartbeat()
            self._last_beat = now
        if "pubsub" in self._routes:
            self._pubsub_drain()
        polling = "poll" in self._routes
        every = settings.SHAKE_CONTROL_POLL_SECONDS if polling else _SLOW_LOAD_SECONDS
        if force or now - self._last_load >= every:
            self._load_rounds(apply_changes=polling or force)
            self._last_load = now
        self._top_up()
        if force or now - self._last_flush >= settings.SHAKE_FLUSH_SECONDS:
            self.flush()
            self._last_flush = now

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                close_old_connections()
                self.step()
                self._ready.set()
            except Exception:  # the thread must outlive a database or Redis hiccup
                logger.exception("shake engine background step failed")
                connections.close_all()
            self._stop.wait(TICK_SECONDS / 2)
        self.flush()
        connections.close_all()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _heartbeat(self) -> None:
        if self._registry is None:
            self.slot, self.live_processes = 0, 1
            return
        ttl = int(settings.SHAKE_PROCESS_TTL_SECONDS * 1000)
        # Beyond SHAKE_SLOTS processes, the extra ones share slices (slot mod slices).
        slots = int(settings.SHAKE_SLOTS) * 8
        if self.slot is not None and not self._registry.eval(
            _SLOT_CLAIM, 1, f"{settings.SHAKE_REGISTRY}:slot:{self.slot}", self.owner, ttl
        ):
            self.slot = None
        if self.slot is None:
            for candidate in range(slots):
                if self._registry.eval(
                    _SLOT_CLAIM, 1, f"{settings.SHAKE_REGISTRY}:slot:{candidate}", self.owner, ttl
                ):
                    self.slot = candidate
                    break
        holders = self._registry.mget([f"{settings.SHAKE_REGISTRY}:slot:{n}" for n in range(slots)])
        self.live_processes = max(sum(1 for holder in holders if holder is not None), 1)

    def _pubsub_drain(self) -> None:
        """Route 1: the control messages published since the last step."""
        if self._registry is None:
            return
        try:
            if self._pubsub is None:
                self._pubsub = self._registry.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(f"{settings.SHAKE_REGISTRY}:control")
            while (message := self._pubsub.get_message(timeout=0)) is not None:
                data = message.get("data")
                if isinstance(data, bytes):
                    self.schedule_apply_token(data.decode("ascii", "replace"))
        except redis.RedisError:
            logger.warning("shake control channel lost; the poll and the clients carry on")
            self._pubsub = None

    def _load_rounds(self, *, apply_changes: bool) -> None:
        """Load the rounds that start within LOOKAHEAD or are running. With the poll
        route (apply_changes) this is route 2 of live control: each round's schedule
        is taken if its version is newer; without it, only new rounds are taken."""
        now = timezone.now()
        horizon = now + timedelta(seconds=_LOOKAHEAD_SECONDS)
        recent = now - timedelta(days=2)
        rows = Round.objects.filter(
            Q(latest_start__gte=recent) | Q(countdown_at__gte=recent) | Q(started_at__gte=recent),
            activity__approved_at__isnull=False,
        )
        seen: set[int] = set()
        for row in rows:
            schedule = schedule_of(row)
            with self._lock:  # known versions, also of rounds over (see schedule_apply)
                known = self._versions.get(row.pk, 0)
                self._versions[row.pk] = max(known, schedule.version)
            if not (schedule.paused and not schedule.ended) and schedule.ends <= now.timestamp():
                continue
            if schedule.starts > horizon.timestamp() and row.planned_start > horizon:
                continue
            self._round_activity[row.pk] = row.activity_id
            if row.activity_id not in self._activities:
                for sponsor in Sponsor.objects.filter(activity_id=row.activity_id):
                    self.sponsors[sponsor.pk] = SponsorView(
                        sponsor.pk, sponsor.name, sponsor.logo_url, sponsor.background
                    )
                self._activities.add(row.activity_id)
            seen.add(row.pk)
            if row.pk in self.rounds and not apply_changes:
                continue
            self.schedule_apply(schedule)
        self._load_quotas(seen)
        self._load_manifests({self._round_activity[round_id] for round_id in seen})
        wall = time.time()
        with self._lock:
            over = [
                round_id
                for round_id, state in self.rounds.items()
                # The database is the reference when polling: a round it no longer
                # shows (over, or deleted) is dropped; otherwise when its view is over.
                if (apply_changes and round_id not in seen)
                or (
                    state.view.ends < wall - _LOOKAHEAD_SECONDS
                    and not (state.view.paused and not state.view.ended)
                )
            ]
            for round_id in over:
                del self.rounds[round_id]  # over: what is still held is recycled later

    def _load_manifests(self, activity_ids: set[int]) -> None:
        """Each activity's asset manifest, read again only when its version moved."""
        versions = Activity.objects.filter(pk__in=activity_ids).values_list("pk", "assets_version")
        for activity_id, version in versions:
            known = self.manifests.get(activity_id)
            if known is None or known.version != version:
                self.manifests[activity_id] = manifest_of(activity_id)

    def manifest_for(self, round_id: int | None) -> Manifest | None:
        """The asset manifest of a round's activity, if this process loaded it."""
        activity_id = self._round_activity.get(round_id) if round_id is not None else None
        return self.manifests.get(activity_id) if activity_id is not None else None

    def _load_quotas(self, round_ids: set[int]) -> None:
        """The newest quota table of each round, swapped in whole if newer."""
        newest: dict[int, QuotaConfig] = {}
        for config in QuotaConfig.objects.filter(round_id__in=round_ids).order_by("-id"):
            newest.setdefault(config.round_id, config)
        with self._lock:
            for round_id, config in newest.items():
                state = self.rounds.get(round_id)
                if state is not None and config.pk > state.quotas.version:
                    state.quotas = QuotaTable.of(config.pk, config.per_second)

    def _top_up(self) -> None:
        if self.slot is None:
            return
        for state in list(self.rounds.values()):
            if state.exhausted or len(state.held) > settings.SHAKE_RESERVE_LOW_WATER:
                continue
            if state.view.ended or (not state.view.paused and state.view.ends <= time.time()):
                continue  # over: nothing more to hand out
            batch = prizes_reserve(
                round_id=state.view.round_id,
                slice_=self.slot % state.view.slices,
                owner=self.owner,
                count=int(settings.SHAKE_RESERVE_BATCH),
            )
            with self._lock:
                state.held.extend(batch)  # durable (committed) before it can be handed out
                state.exhausted = not batch

    def flush(self) -> int:
        with self._lock:
            issued, self._issued = self._issued, []
        if not issued:
            return 0
        try:
            return prizes_issued_record(owner=self.owner, issued=issued)
        except Exception:
            with self._lock:
                self._issued[:0] = issued  # kept for the next flush
            raise


_engine: Engine | None = None
_engine_lock = threading.Lock()


def engine() -> Engine:
    """This process's engine. ASGI processes start it at startup (`engine_start`:
    slot claimed, first batch reserved before the round); elsewhere on first use.
    Without SHAKE_ENGINE_THREAD (in-process tests) nothing runs in the background."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                created = Engine()
                if settings.SHAKE_ENGINE_THREAD:
                    created.start()
                _engine = created
    return _engine


def engine_start() -> None:
    engine()
