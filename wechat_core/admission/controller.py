"""The admission level of this process (DAGOR, SoCC 2018), in memory.

Every request has a compound priority (business, user), flattened to one index
`business * USER_LEVELS + user`; smaller is more important. The controller keeps
an **admission level**: a request is admitted when its index is at or below the
level, so lower priorities are always refused before higher ones, and within a
business class users are refused by their (hourly rotated) rank.

Overload is detected from **queuing time** (how long admitted requests waited
before their handler ran, and the event loop's lag), averaged over a window of
`window_seconds` or `window_requests` requests, whichever ends first. At the end
of a window:

- average above `threshold` → shed: the level moves down, through the histogram
  of the window's offered requests, until the admitted share falls by a step.
  DAGOR's step is a fixed 5 %; ours is sized to the overload (1 - threshold /
  average, between `shed_step` and `shed_step_max`), so 3x load is shed in a
  few windows rather than twenty.
- otherwise → recover: the level moves up until `recover_step` more would be
  admitted (or to the top, when nothing was refused).

The floor is the whole top class (LOGIN): it is never refused, so a user can
always log in and be told to wait. The reject path is a comparison and two
counter increments: no database, no Redis, no lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from wechat_core.admission.priorities import BUSINESS_LEVELS, USER_LEVELS, Business

TOP = BUSINESS_LEVELS * USER_LEVELS - 1  # everything admitted
FLOOR = USER_LEVELS - 1  # the whole LOGIN class admitted, always


def index_of(business: int, user: int) -> int:
    return business * USER_LEVELS + user


@dataclass(frozen=True, slots=True)
class Decision:
    admitted: bool
    tier: int  # 0 normal, 1 slow down, 2 stop what is not essential
    retry_after: int  # seconds, for a refusal


class AdmissionController:
    """One per process (`controller()`); tests build their own with a fake clock."""

    def __init__(
        self,
        *,
        threshold: float = 0.020,
        window_seconds: float = 0.5,
        window_requests: int = 2000,
        shed_step: float = 0.05,
        shed_step_max: float = 0.5,
        recover_step: float = 0.02,
        retry_after: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.window_seconds = window_seconds
        self.window_requests = window_requests
        self.shed_step = shed_step
        self.shed_step_max = shed_step_max
        self.recover_step = recover_step
        self.retry_after_base = retry_after
        self.clock = clock
        self.level = TOP
        self._histogram = [0] * (TOP + 1)
        self._offered = 0
        self._wait_sum = 0.0
        self._wait_count = 0
        self._probe_sum = 0.0
        self._probe_count = 0
        self._window_start = clock()
        self._lock = threading.Lock()
        self.last_average = 0.0
        self.windows = 0
        self.on_window: Callable[[AdmissionController], None] | None = None

    # --- The hot path -------------------------------------------------------------------

    def admit(self, business: int, user: int) -> Decision:
        if business < 0:  # operators' pages
            return Decision(True, self.tier(), 0)
        index = index_of(min(business, BUSINESS_LEVELS - 1), user % USER_LEVELS)
        # Unlocked increments may lose a count now and then under threads: the
        # histogram only steers the level, and the hot path stays lock-free.
        self._histogram[index] += 1
        self._offered += 1
        if self._offered >= self.window_requests:
            self.maybe_adjust(force=True)
        if index <= self.level:
            return Decision(True, self.tier(), 0)
        tier = self.tier()
        return Decision(False, tier, self.retry_after_base * tier)

    def queued(self, seconds: float, *, probe: bool = False) -> None:
        """An admitted request waited `seconds` before its handler ran; or (`probe`) the
        event loop lagged, or a no-op waited for the thread pool, that long. Requests
        and probes are averaged apart and the worse counts: a few slow requests are
        not drowned by many idle probes, nor the reverse."""
        if probe:
            self._probe_sum += seconds
            self._probe_count += 1
        else:
            self._wait_sum += seconds
            self._wait_count += 1
        self.maybe_adjust()

    def tier(self) -> int:
        if self.level >= TOP:
            return 0
        if self.level >= index_of(Business.SYNC + 1, 0) - 1:
            return 1  # only what is below sync is being refused
        return 2

    # --- The window ---------------------------------------------------------------------

    def maybe_adjust(self, *, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._window_start < self.window_seconds:
            return
        if not self._lock.acquire(blocking=False):
            return  # another thread is closing this window
        try:
            if not force and now - self._window_start < self.window_seconds:
                return
            histogram, self._histogram = self._histogram, [0] * (TOP + 1)
            wait_sum, wait_count = self._wait_sum, self._wait_count
            probe_sum, probe_count = self._probe_sum, self._probe_count
            self._wait_sum, self._wait_count, self._offered = 0.0, 0, 0
            self._probe_sum, self._probe_count = 0.0, 0
            self._window_start = now
            self.windows += 1
            average = max(
                wait_sum / wait_count if wait_count else 0.0,
                probe_sum / probe_count if probe_count else 0.0,
            )
            self.last_average = average
            self.level = next_level(
                self.level,
                histogram,
                overloaded=average > self.threshold,
                shed=min(
                    self.shed_step_max,
                    max(self.shed_step, 1 - self.threshold / average if average else 0.0),
                ),
                recover=self.recover_step,
            )
        finally:
            self._lock.release()
        if self.on_window is not None:
            self.on_window(self)


def next_level(
    level: int, histogram: list[int], *, overloaded: bool, shed: float, recover: float
) -> int:
    """The level after a window whose offered requests per index were `histogram`."""
    admitted = sum(histogram[: level + 1])
    if overloaded:
        if admitted == 0:
            return max(FLOOR, level - USER_LEVELS)  # no evidence of who: one class down
        target = admitted * (1 - shed)
        total = admitted
        new = level
        while new > FLOOR and total > target:
            total -= histogram[new]
            new -= 1
        return max(FLOOR, new)
    if level >= TOP:
        return TOP
    refused = sum(histogram[level + 1 :])
    if refused == 0:
        # Nothing above the level was offered: no way to size the step; open a class.
        return min(TOP, level + USER_LEVELS)
    target = max(admitted * (1 + recover), admitted + 1)
    total = admitted
    new = level
    while new < TOP and total < target:
        new += 1
        total += histogram[new]
    return new


_controller: AdmissionController | None = None
_controller_lock = threading.Lock()


def controller() -> AdmissionController:
    """This process's controller, built from the settings on first use."""
    global _controller
    if _controller is None:
        from django.conf import settings

        with _controller_lock:
            if _controller is None:
                _controller = AdmissionController(
                    threshold=settings.ADMISSION_QUEUE_THRESHOLD_MS / 1000,
                    window_seconds=settings.ADMISSION_WINDOW_SECONDS,
                    window_requests=settings.ADMISSION_WINDOW_REQUESTS,
                    shed_step=settings.ADMISSION_SHED_STEP,
                    shed_step_max=settings.ADMISSION_SHED_STEP_MAX,
                    recover_step=settings.ADMISSION_RECOVER_STEP,
                    retry_after=settings.ADMISSION_RETRY_AFTER_SECONDS,
                )
                _controller.on_window = _publish
    return _controller


def _publish(current: AdmissionController) -> None:
    from wechat_core.admission.metrics import ADMISSION_LEVEL, ADMISSION_TIER

    ADMISSION_LEVEL.set(value=current.level)
    ADMISSION_TIER.set(value=current.tier())
