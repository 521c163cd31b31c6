"""The DR drill (seed 000: 容灾拨测; issue 13): block one campus for a few minutes
while synthetic clients chat, and check that failures did not rise.

`drill_run` picks a campus (the given one, else the open campus drilled least
recently), signs in DR_DRILL_PAIRS pairs of synthetic users (made once, kept)
with the Python client (messaging.client) spread over the open campuses, and:

1. baseline: each sender sends a message every DR_DRILL_SEND_INTERVAL_SECONDS
   for DR_DRILL_BASELINE_SECONDS; a failure is a send not acknowledged within
   DR_DRILL_SEND_TIMEOUT_SECONDS or a message its receiver never got;
2. block: the campus is blocked with the audited switch (reason "DR drill N"),
   the same workload runs for DR_DRILL_BLOCK_SECONDS; every half second the
   failure rate so far is compared with the baseline's, and when it is higher
   by more than DR_DRILL_MAX_FAILURE_RATE_DELTA (with at least
   DR_DRILL_ABORT_MIN_FAILURES failures) the drill aborts: it unblocks the
   campus at once;
3. the campus is unblocked (whatever happened), and the report (DrDrill) saved.

A drill that failed or aborted opens an alert on the rule "DR drill failed"
(monitoring's alert lifecycle and channels notify operators); one that passed
resolves it. Nothing is drilled when a campus is already blocked or fewer than
two campuses with endpoints are open (SKIPPED), and one drill runs at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from messaging.client import EndpointShield
from monitoring.models import Aggregation, DrDrill, DrillOutcome, Severity
from monitoring.services.alerts import ExternalRule, Verdict, alert_verdict_record
from wechat_core import breakers
from wechat_core.metrics import counter

logger = logging.getLogger(__name__)

DRILL_SOURCE = "dr_drill"
LOCK_KEY = "dr-drill:running"
DRILL_RUNS = counter(
    "dr_drill_runs_total", "DR drills run, by outcome.", ["outcome"], process_labels=True
)
DRILL_RULE = ExternalRule(
    source=DRILL_SOURCE,
    name="DR drill failed",
    description=(
        "Judged by the daily DR drill (dr_drill): fires when blocking one campus raised the "
        "synthetic clients' failure rate by more than DR_DRILL_MAX_FAILURE_RATE_DELTA; the "
        "drill then unblocked it. See /monitoring/drills."
    ),
    metric=DRILL_RUNS.name,
    aggregation=Aggregation.INCREASE,
    labels={"outcome": ["failed", "aborted"]},
    threshold=0.0,
    window_seconds=86400,
    severity=Severity.CRITICAL,
)


@dataclass
class Phase:
    """Counts of one phase; `pending` are acknowledged messages not yet received."""

    sent: int = 0
    failed: int = 0  # sends not acknowledged in time, and `lost`
    lost: int = 0  # acknowledged, never received
    pending: dict[str, float] = field(default_factory=dict)  # text → when acknowledged

    @property
    def rate(self) -> float:
        return self.failed / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class DrillPlan:
    campus: str
    block_seconds: float
    baseline_seconds: float
    interval: float
    send_timeout: float
    max_delta: float
    min_failures: int


# --- Synthetic users ---------------------------------------------------------------------


def drill_pairs(count: int) -> list[tuple[str, str, int]]:
    """(sender ticket, receiver ticket, their chat) for `count` pairs of drill users,
    made on first use and kept; each drill issues fresh tickets."""
    from django.db import transaction

    from accounts.models import Device, Platform, User
    from accounts.services.contacts import friend_request_accept, friend_request_send
    from accounts.services.devices import device_register_login
    from accounts.services.registration import user_create
    from accounts.tickets import ticket_issue, ticket_verify
    from accounts.types import DeviceInfo
    from messaging.services.conversations import direct_open

    info = DeviceInfo(platform=Platform.OTHER, client_version="3.0.0", name="dr-drill")

    def user(n: int) -> User:
        email = f"dr-drill-{n}@drill.example.com"
        found = User.objects.filter(email=email).first()
        return found or user_create(
            phone=None, email=email, password=secrets.token_urlsafe(24), nickname=f"drill {n}"
        )

    def ticket(account: User) -> str:
        with transaction.atomic():
            device = Device.objects.filter(user=account, removed_at__isnull=True).first()
            if device is None:
                device = device_register_login(user=account, info=info, ip=None)
            token, _ = ticket_issue(user=account, device=device)
        return token

    pairs = []
    for n in range(count):
        sender, receiver = user(2 * n), user(2 * n + 1)
        s_ticket, r_ticket = ticket(sender), ticket(receiver)
        s_verified = ticket_verify(token=s_ticket)
        outcome = friend_request_send(ticket=s_verified, user_id=sender.pk, to_user_id=receiver.pk)
        if outcome.request is not None and outcome.friendship is None:
            friend_request_accept(
                ticket=ticket_verify(token=r_ticket),
                user_id=receiver.pk,
                request_id=outcome.request.pk,
            )
        chat = direct_open(ticket=s_verified, user_id=sender.pk, peer_id=receiver.pk)
        pairs.append((s_ticket, r_ticket, chat.pk))
    return pairs


# --- Choosing the campus -------------------------------------------------------------------


def _choose(campus: str | None) -> tuple[str | None, str, dict[str, list[str]]]:
    """(campus to drill or None, why not, usable endpoints of each open campus)."""
    from wechat_core.campuses import CAMPUS_SERVICE, usable_endpoints
    from wechat_core.selectors import campus_list

    campuses = campus_list()
    if any(c.blocked for c in campuses):
        return None, "a campus is blocked already: no drill during an outage", {}
    # The drill's clients are the server's own: they avoid blocked campuses and
    # instances this process's breakers ejected (found dead by an earlier drill).
    usable = {c.code: usable_endpoints(CAMPUS_SERVICE, c.endpoints) for c in campuses}
    open_ones = {code: urls for code, urls in usable.items() if urls}
    if len(open_ones) < 2:
        return None, "fewer than two campuses with usable access endpoints", open_ones
    if campus is not None:
        if campus not in open_ones:
            return None, f"campus {campus!r} is unknown or has no endpoints", open_ones
        return campus, "", open_ones
    last: dict[str, float] = {}
    for code, started in DrDrill.objects.exclude(outcome=DrillOutcome.SKIPPED).values_list(
        "campus", "started_at"
    ):
        last.setdefault(code, started.timestamp())
    chosen = min(sorted(open_ones), key=lambda code: last.get(code, 0.0))
    return chosen, "", open_ones


# --- The run ------------------------------------------------------------------------------


class BreakerShield(EndpointShield):
    """The drill's clients' links count against this process's breakers
    (CAMPUS_SERVICE), and skip instances they ejected: the server's own calls avoid
    a dead instance as they avoid a blocked campus."""

    def usable(self, url: str) -> bool:
        from wechat_core.campuses import CAMPUS_SERVICE

        return not breakers.ejected(CAMPUS_SERVICE, breakers.instance_of(url))

    def report(self, url: str, *, ok: bool) -> None:
        from wechat_core.campuses import CAMPUS_SERVICE

        breakers.report(CAMPUS_SERVICE, breakers.instance_of(url), ok=ok)


def drill_run(
    *, campus: str | None = None, trigger: str = "command", block_seconds: float | None = None
) -> DrDrill:
    """Run one drill to the end (minutes) and return its report."""
    plan_block = settings.DR_DRILL_BLOCK_SECONDS if block_seconds is None else block_seconds
    if not cache.add(LOCK_KEY, "1", timeout=int(plan_block + 3600)):
        return _skipped(campus or "", trigger, "another drill is running")
    try:
        _recover_interrupted()
        chosen, why_not, endpoints = _choose(campus)
        if chosen is None:
            return _skipped(campus or "", trigger, why_not)
        drill = DrDrill.objects.create(
            campus=chosen,
            trigger=trigger,
            planned_block_seconds=plan_block,
            clients=2 * settings.DR_DRILL_PAIRS,
        )
        plan = DrillPlan(
            campus=chosen,
            block_seconds=plan_block,
            baseline_seconds=settings.DR_DRILL_BASELINE_SECONDS,
            interval=settings.DR_DRILL_SEND_INTERVAL_SECONDS,
            send_timeout=settings.DR_DRILL_SEND_TIMEOUT_SECONDS,
            max_delta=settings.DR_DRILL_MAX_FAILURE_RATE_DELTA,
            min_failures=settings.DR_DRILL_ABORT_MIN_FAILURES,
        )
        pairs = drill_pairs(settings.DR_DRILL_PAIRS)
        try:
            result = asyncio.run(drill_exercise(drill.pk, plan, pairs, endpoints))
        finally:
            _set_blocked(chosen, False, f"DR drill {drill.pk}: end")  # whatever happened
        return _finish(drill, result)
    finally:
        cache.delete(LOCK_KEY)


def _recover_interrupted() -> None:
    """A drill whose process died mid-block (a killed worker, a lost machine) left its
    campus blocked: unblock it if the switch was last flipped by that drill, and
    report the drill as aborted."""
    from wechat_core.models import CampusBlockEvent

    margin = settings.DR_DRILL_BASELINE_SECONDS + 2 * settings.DR_DRILL_SEND_TIMEOUT_SECONDS + 600
    for drill in DrDrill.objects.filter(outcome=DrillOutcome.RUNNING):
        age = (timezone.now() - drill.started_at).total_seconds()
        if age < drill.planned_block_seconds + margin:
            continue
        last = (
            CampusBlockEvent.objects.filter(campus_id=drill.campus).order_by("-created_at").first()
        )
        if last is not None and last.blocked and last.reason == f"DR drill {drill.pk}":
            _set_blocked(drill.campus, False, f"DR drill {drill.pk}: interrupted, unblocked")
        drill.outcome = DrillOutcome.ABORTED
        drill.finished_at = timezone.now()
        drill.explanation = "interrupted (its process stopped); the campus was unblocked"
        drill.save(update_fields=["outcome", "finished_at", "explanation"])
        DRILL_RUNS.inc(DrillOutcome.ABORTED)


def _skipped(campus: str, trigger: str, why: str) -> DrDrill:
    now = timezone.now()
    DRILL_RUNS.inc(DrillOutcome.SKIPPED)
    return DrDrill.objects.create(
        campus=campus,
        trigger=trigger,
        outcome=DrillOutcome.SKIPPED,
        finished_at=now,
        explanation=why[:300],
    )


def _set_blocked(code: str, blocked: bool, reason: str) -> None:
    from wechat_core.services import campus_set_blocked

    campus_set_blocked(code=code, blocked=blocked, actor=None, reason=reason[:200])


def _in_thread(function: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    """The ORM from the drill's event loop: in a thread, its connection closed after."""

    def call() -> Any:
        try:
            return function(*args)
        finally:
            connection.close()

    return asyncio.to_thread(call)


@dataclass
class Result:
    before: Phase
    during: Phase
    aborted: bool = False
    blocked_at: float | None = None
    unblocked_at: float | None = None
    moved: int = 0
    reconnect_max: float | None = None
    reconnects: list[float] = field(default_factory=list)  # seconds, each moved link
    on_campus: int = 0  # links on the campus when it was blocked


async def drill_exercise(
    drill_id: int,
    plan: DrillPlan,
    pairs: list[tuple[str, str, int]],
    endpoints: dict[str, list[str]],
) -> Result:
    from messaging.client import ChatClient

    codes = sorted(endpoints)
    others = [c for c in codes if c != plan.campus]

    def endpoints_for(n: int) -> list[str]:
        # Half the clients start on the drilled campus, the rest on the others in turn.
        first = plan.campus if n % 2 == 0 else others[n // 2 % len(others)]
        rest = [url for code in codes if code != first for url in endpoints[code]]
        return [*endpoints[first], *rest]

    shield = BreakerShield()
    senders = [
        ChatClient(endpoints_for(2 * n), s, shield=shield) for n, (s, _, _) in enumerate(pairs)
    ]
    receivers = [
        ChatClient(endpoints_for(2 * n + 1), r, shield=shield) for n, (_, r, _) in enumerate(pairs)
    ]
    clients = senders + receivers
    result = Result(Phase(), Phase())
    phase = result.before
    received: set[str] = set()
    stop = asyncio.Event()

    async def collect(client: ChatClient) -> None:
        while True:
            entry = await client.entries.get()
            message = entry.get("message") or {}
            text = (message.get("body") or {}).get("text")
            if entry.get("kind") == "message" and isinstance(text, str):
                received.add(text)

    async def send_one(client: ChatClient, chat: int, counted: Phase) -> None:
        text = f"drill {drill_id} {uuid.uuid4().hex}"
        counted.sent += 1
        try:
            await client.send(chat, {"text": text}, timeout=plan.send_timeout)
        except Exception:
            counted.failed += 1
            return
        counted.pending[text] = time.monotonic()

    async def chat_loop(client: ChatClient, chat: int) -> None:
        sends: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            task = asyncio.create_task(send_one(client, chat, phase))
            sends.add(task)
            task.add_done_callback(sends.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), plan.interval)
        if sends:
            await asyncio.wait(sends)

    def settle(counted: Phase, *, final: bool) -> None:
        """Acknowledged messages received are done; those waited for too long failed."""
        now = time.monotonic()
        for text, acked in list(counted.pending.items()):
            if text in received:
                del counted.pending[text]
            elif final or now - acked > plan.send_timeout:
                del counted.pending[text]
                counted.failed += 1
                counted.lost += 1

    async def wait_settled(counted: Phase) -> None:
        deadline = time.monotonic() + plan.send_timeout
        while counted.pending and time.monotonic() < deadline:
            settle(counted, final=False)
            await asyncio.sleep(0.1)
        settle(counted, final=True)

    await asyncio.gather(*(c.start(wait=False) for c in clients))
    collectors = [asyncio.create_task(collect(c)) for c in receivers]
    up_deadline = time.monotonic() + 30
    while not all(c.connected.is_set() for c in clients) and time.monotonic() < up_deadline:
        await asyncio.sleep(0.05)
    loops = [
        asyncio.create_task(chat_loop(s, chat))
        for s, (_, _, chat) in zip(senders, pairs, strict=True)
    ]
    try:
        await asyncio.sleep(plan.baseline_seconds)
        on_campus = [c for c in clients if c.current_endpoint in endpoints[plan.campus]]
        phase = result.during
        settle(result.before, final=False)
        await _in_thread(_set_blocked, plan.campus, True, f"DR drill {drill_id}")
        result.blocked_at = time.monotonic()
        await _in_thread(_mark, drill_id, "blocked_at")
        moved: dict[int, float] = {}
        ends = result.blocked_at + plan.block_seconds
        while time.monotonic() < ends:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for client in on_campus:
                if id(client) not in moved and client.moves and client.connected.is_set():
                    moved[id(client)] = now - result.blocked_at
            settle(result.during, final=False)
            settle(result.before, final=False)
            delta = result.during.rate - result.before.rate
            if result.during.failed >= plan.min_failures and delta > plan.max_delta:
                result.aborted = True
                logger.warning("DR drill %s: failures rose by %.3f; unblocking", drill_id, delta)
                break
        await _in_thread(_set_blocked, plan.campus, False, f"DR drill {drill_id}: end")
        result.unblocked_at = time.monotonic()
        result.moved = len(moved)
        result.reconnect_max = max(moved.values()) if moved else None
        result.reconnects = sorted(moved.values())
        result.on_campus = len(on_campus)
    finally:
        stop.set()
        await asyncio.gather(*loops, return_exceptions=True)
        await wait_settled(result.before)
        await wait_settled(result.during)
        for task in collectors:
            task.cancel()
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return result


def _mark(drill_id: int, name: str) -> None:
    DrDrill.objects.filter(pk=drill_id).update(**{name: timezone.now()})


def _finish(drill: DrDrill, result: Result) -> DrDrill:
    drill.refresh_from_db()
    drill.before_sent, drill.before_failed = result.before.sent, result.before.failed
    drill.during_sent, drill.during_failed = result.during.sent, result.during.failed
    drill.moved_clients = result.moved
    if result.reconnect_max is not None:
        drill.reconnect_max_ms = round(result.reconnect_max * 1000)
    drill.unblocked_at = drill.unblocked_at or timezone.now()
    drill.finished_at = timezone.now()
    delta = drill.during_rate - drill.before_rate
    rates = (
        f"failure rate {drill.before_rate:.1%} before, {drill.during_rate:.1%} with "
        f"{drill.campus} blocked ({drill.during_failed} of {drill.during_sent} sends)"
    )
    if result.aborted:
        drill.outcome = DrillOutcome.ABORTED
        drill.explanation = f"aborted and unblocked at once: {rates}"
    elif delta > settings.DR_DRILL_MAX_FAILURE_RATE_DELTA and drill.during_failed:
        drill.outcome = DrillOutcome.FAILED
        drill.explanation = f"failures rose: {rates}"
    else:
        drill.outcome = DrillOutcome.PASSED
        drill.explanation = f"passed: {rates}; {drill.moved_clients} links moved"
    drill.explanation = drill.explanation[:300]
    drill.save()
    DRILL_RUNS.inc(drill.outcome)
    failed = drill.outcome in (DrillOutcome.FAILED, DrillOutcome.ABORTED)
    alert_verdict_record(
        rule=DRILL_RULE,
        verdict=Verdict(failed, delta, f"drill {drill.pk} of {drill.campus}: {drill.explanation}"),
    )
    return drill
