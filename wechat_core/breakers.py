"""Shielding of failing instances by each caller (seed 000, issue 13).

Every outbound call to another party's instance (a developer's webhook server,
the payment provider, another campus) goes through `shielded`, which keeps one
circuit breaker per (service, host:port) in this process's memory. No central
node decides: each process ejects an instance after BREAKER_FAILURES
consecutive failures or timeouts, refuses calls to it at once (without
reaching it) for BREAKER_RESET_SECONDS, then lets one call through as a probe
(half-open): success brings the instance back, failure ejects it again.

The breaker is a small one of our own: pybreaker (tried first) holds its lock for
the whole of each call, so every call to one instance waited for the one before:
a developer's server answering in 5 s would take one push at a time. Here the
lock guards the state only; calls run side by side, and while half-open one probe
goes through and the others are refused. In memory on purpose: shared state
would be a central node. `Ejected` tells the caller the instance was shielded,
and when it is probed next.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from django.conf import settings

from wechat_core.metrics import counter, gauge

T = TypeVar("T")

BREAKER_TRANSITIONS = counter(
    "breaker_transitions_total",
    "Circuit breaker state changes of outbound instances (state: open = ejected, "
    "half_open = probing, closed = back), by calling service.",
    ["service", "state"],
    process_labels=True,
)
BREAKER_REFUSED = counter(
    "breaker_refused_calls_total",
    "Outbound calls refused without reaching an ejected instance, by calling service.",
    ["service"],
    process_labels=True,
)
BREAKER_OPEN = gauge(
    "breaker_open_instances",
    "Outbound instances ejected right now (open or half-open), by calling service.",
    ["service"],
    process_labels=True,
)


# Services whose instances cool down for another setting than BREAKER_RESET_SECONDS.
RESET_SETTING = {"redis": "REDIS_BREAKER_RESET_SECONDS"}


class Ejected(Exception):
    """The instance is shielded: the call was refused without reaching it."""

    def __init__(self, service: str, instance: str, retry_in: float) -> None:
        super().__init__(
            f"{instance} is ejected after {settings.BREAKER_FAILURES} consecutive failures; "
            f"probed again in {retry_in:.0f} s"
        )
        self.service, self.instance, self.retry_in = service, instance, retry_in


class Breaker:
    """One instance's breaker: closed (counting consecutive failures), open (refusing
    until the cool-down ends), half_open (one probe in flight decides)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False
        self.lock = threading.Lock()

    def retry_in(self) -> float:
        if self.state == "closed":
            return 0.0
        reset = float(getattr(settings, RESET_SETTING.get(self.service, "BREAKER_RESET_SECONDS")))
        return max(0.0, self.opened_at + reset - time.monotonic())

    def _move(self, state: str) -> None:
        self.state = state
        BREAKER_TRANSITIONS.inc(self.service, state)

    def admit(self) -> bool:
        """Whether a call may go now (a probe when the cool-down is over)."""
        with self.lock:
            if self.state == "closed":
                return True
            if self.state == "open" and self.retry_in() <= 0:
                self._move("half_open")
            if self.state == "half_open" and not self.probing:
                self.probing = True
                return True
            return False

    def record(self, *, ok: bool) -> None:
        with self.lock:
            was = self.state
            if was == "half_open":
                self.probing = False
            if ok:
                self.failures = 0
                if was != "closed":
                    self._move("closed")
            else:
                self.failures += 1
                if was == "half_open" or (
                    was == "closed" and self.failures >= settings.BREAKER_FAILURES
                ):
                    self.opened_at = time.monotonic()
                    self._move("open")
            changed = was != self.state
        if changed:
            BREAKER_OPEN.set(self.service, value=open_count(self.service))


_breakers: OrderedDict[tuple[str, str], Breaker] = OrderedDict()
_lock = threading.Lock()


def instance_of(url: str) -> str:
    """host:port of a URL (the default port spelled out): what one breaker guards."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    return f"{(parts.hostname or '').lower()}:{port}"


def breaker(service: str, instance: str) -> Breaker:
    key = (service, instance)
    with _lock:
        found = _breakers.get(key)
        if found is not None:
            _breakers.move_to_end(key)
            return found
        found = _breakers[key] = Breaker(service)
        # Bounded memory: forget the least recently used (a forgotten ejected
        # instance starts closed again, which only costs a few failed calls).
        while len(_breakers) > settings.BREAKER_TRACKED_INSTANCES:
            _breakers.popitem(last=False)
        return found


def state(service: str, instance: str) -> str:
    """ "closed", "open" or "half_open" (a breaker never used is closed)."""
    with _lock:
        found = _breakers.get((service, instance))
    return "closed" if found is None else found.state


def open_count(service: str) -> int:
    with _lock:
        return sum(1 for (s, _), b in _breakers.items() if s == service and b.state != "closed")


def ejected(service: str, instance: str) -> bool:
    """Whether a call now would be refused (open and still cooling down)."""
    with _lock:
        found = _breakers.get((service, instance))
    return found is not None and found.state == "open" and found.retry_in() > 0


def shielded(
    service: str,
    instance: str,
    call: Callable[[], T],
    failed: Callable[[T], bool] = lambda result: False,
) -> T:
    """Run `call` through the instance's breaker. An exception from it, or an
    answer `failed` says is a failure (a timeout, a 5xx), counts against the
    instance and is passed on unchanged; raises `Ejected` without calling when
    the instance is shielded."""
    guard = breaker(service, instance)
    if not guard.admit():
        BREAKER_REFUSED.inc(service)
        raise Ejected(service, instance, guard.retry_in())
    try:
        result = call()
    except BaseException:
        guard.record(ok=False)
        raise
    guard.record(ok=not failed(result))
    return result


def report(service: str, instance: str, *, ok: bool) -> None:
    """Count the outcome of a call made outside `shielded` (a websocket link kept
    open by a client loop, say) against the instance's breaker."""
    breaker(service, instance).record(ok=ok)


def forget_all() -> None:
    """Drop every breaker of this process (tests; an operator's reset)."""
    with _lock:
        _breakers.clear()
