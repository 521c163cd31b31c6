"""The spam filter: a pluggable, non-essential step (seed 001, 柔性可用).

MESSAGING_SPAM_FILTER names a callable taking a `SpamCandidate` and returning
True for spam. It runs in a small thread pool under a time budget
(MESSAGING_SPAM_FILTER_BUDGET_MS). If it raises or overruns, the message is
delivered anyway and the skip is counted (`messaging_spam_filter_skips_total`):
a broken filter must never stop people talking. A filter marked `@runs_inline`
(pure computation on the text, like the default keyword filter) runs in the
sender's thread instead: the hand-off to the pool cost more server time than
the filter itself (docs/performance.md). It can still raise and be skipped; it
cannot be cut short, so one that overruns is logged as needing the pool.

A new filter is rolled out like any change: MESSAGING_SPAM_FILTER_CANDIDATE
names it, and senders for whom the feature `messaging.spam_filter_candidate` is
on get it instead. Mark that feature guarded: each check counts as an outcome
of its variant (a skip is an error), and the rollout pauses or rolls back by
itself if the candidate fails more often than the current filter
(grayrelease.services.guard). `remote_filter` asks a spam-scoring service
over HTTP.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import lru_cache

import httpx
from django.conf import settings
from django.utils.module_loading import import_string

from accounts.types import VerifiedTicket
from grayrelease.evaluation import evaluate, feature_outcome
from grayrelease.selectors import subject_for_ticket
from wechat_core.http import outbound_client
from wechat_core.metrics import counter

logger = logging.getLogger(__name__)
CANDIDATE_FEATURE = "messaging.spam_filter_candidate"
SPAM_FILTER_SKIPS = counter(
    "messaging_spam_filter_skips_total",
    "Messages delivered without the spam filter because it failed or overran.",
    ["reason"],
    process_labels=True,
)


@dataclass(frozen=True, slots=True)
class SpamCandidate:
    sender_id: int
    conversation_id: int
    text: str


class SpamVerdict(enum.Enum):
    CLEAN = "clean"
    SPAM = "spam"
    SKIPPED = "skipped"


SpamFilter = Callable[[SpamCandidate], bool]
_inline_filters: set[SpamFilter] = set()


def runs_inline(spam_filter: SpamFilter) -> SpamFilter:
    """Mark a filter that does no I/O and whose cost the text limit bounds: it
    runs in the sender's thread, without the pool's time budget."""
    _inline_filters.add(spam_filter)
    return spam_filter


@runs_inline
def keyword_filter(candidate: SpamCandidate) -> bool:
    """The default filter: spam if the text contains a MESSAGING_SPAM_KEYWORDS entry."""
    text = candidate.text.lower()
    return any(keyword in text for keyword in settings.MESSAGING_SPAM_KEYWORDS)


@lru_cache(maxsize=1)
def _remote_client() -> httpx.Client:
    # One pooled client: building one per message would cost more than the budget.
    return outbound_client(service="messaging.spam")


def remote_filter(candidate: SpamCandidate) -> bool:
    """Ask the spam-scoring service at MESSAGING_SPAM_FILTER_URL: a POST of
    {"sender_id", "conversation_id", "text"}, answered {"spam": true|false}.
    Anything else raises, and the step is skipped."""
    if not settings.MESSAGING_SPAM_FILTER_URL:
        raise RuntimeError("MESSAGING_SPAM_FILTER_URL is not set")
    response = _remote_client().post(
        settings.MESSAGING_SPAM_FILTER_URL,
        json={
            "sender_id": candidate.sender_id,
            "conversation_id": candidate.conversation_id,
            "text": candidate.text,
        },
        timeout=settings.MESSAGING_SPAM_FILTER_BUDGET_MS / 1000,
    )
    response.raise_for_status()
    verdict = response.json().get("spam")
    if not isinstance(verdict, bool):
        raise ValueError("the spam service gave no verdict")
    return verdict


@lru_cache(maxsize=1)
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="spam-filter")


@lru_cache(maxsize=8)
def _load(path: str) -> SpamFilter:
    return import_string(path)  # type: ignore[no-any-return]


def _run_inline(spam_filter: SpamFilter, candidate: SpamCandidate, path: str) -> bool:
    started = time.perf_counter()
    is_spam = spam_filter(candidate)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if elapsed_ms > settings.MESSAGING_SPAM_FILTER_BUDGET_MS:
        logger.warning(
            "inline spam filter %s took %.0f ms, over its %d ms budget; it should not be "
            "marked runs_inline",
            path,
            elapsed_ms,
            settings.MESSAGING_SPAM_FILTER_BUDGET_MS,
        )
    return is_spam


def _run(path: str, candidate: SpamCandidate) -> SpamVerdict:
    spam_filter = _load(path)
    try:
        if spam_filter in _inline_filters:
            is_spam = _run_inline(spam_filter, candidate, path)
        else:
            future = _executor().submit(spam_filter, candidate)
            is_spam = future.result(timeout=settings.MESSAGING_SPAM_FILTER_BUDGET_MS / 1000)
    except FutureTimeout:
        reason, label = "overran its budget", "timeout"
    except Exception as error:
        reason, label = f"raised {type(error).__name__}", "error"
    else:
        return SpamVerdict.SPAM if is_spam else SpamVerdict.CLEAN
    SPAM_FILTER_SKIPS.inc(label)
    logger.warning("spam filter %s; delivering without it", reason)
    return SpamVerdict.SKIPPED


def spam_check_runs_inline() -> bool:
    """Whether every sender's check runs in the caller's thread without I/O: the
    configured filter is marked runs_inline and no candidate is being rolled out
    (whose evaluation reads rollouts). The event loop's send path checks inline
    only then (services.sending_async)."""
    if settings.MESSAGING_SPAM_FILTER_CANDIDATE:
        return False
    return _load(settings.MESSAGING_SPAM_FILTER) in _inline_filters


def spam_check(candidate: SpamCandidate, *, ticket: VerifiedTicket) -> SpamVerdict:
    """The sender's filter's verdict (the candidate's, if they are in its rollout)."""
    if not candidate.text:
        return SpamVerdict.CLEAN
    if not settings.MESSAGING_SPAM_FILTER_CANDIDATE:
        return _run(settings.MESSAGING_SPAM_FILTER, candidate)
    subject = subject_for_ticket(ticket=ticket, user_id=candidate.sender_id)
    decision = evaluate(key=CANDIDATE_FEATURE, subject=subject)
    path = settings.MESSAGING_SPAM_FILTER_CANDIDATE if decision else settings.MESSAGING_SPAM_FILTER
    with feature_outcome(key=CANDIDATE_FEATURE, decision=decision) as outcome:
        verdict = _run(path, candidate)
        if verdict is SpamVerdict.SKIPPED:
            outcome.fail()
    return verdict
