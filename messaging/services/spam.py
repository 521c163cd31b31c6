"""The spam filter: a pluggable, non-essential step (seed 001, 柔性可用).

MESSAGING_SPAM_FILTER names a callable taking a `SpamCandidate` and returning
True for spam. It runs in a small thread pool under a time budget
(MESSAGING_SPAM_FILTER_BUDGET_MS). If it raises or overruns, the message is
delivered anyway and the skip is counted (`messaging_spam_filter_skips_total`):
a broken filter must never stop people talking.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

from monitoring.metrics import counter

logger = logging.getLogger(__name__)
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


def keyword_filter(candidate: SpamCandidate) -> bool:
    """The default filter: spam if the text contains a MESSAGING_SPAM_KEYWORDS entry."""
    text = candidate.text.lower()
    return any(keyword in text for keyword in settings.MESSAGING_SPAM_KEYWORDS)


@lru_cache(maxsize=1)
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="spam-filter")


@lru_cache(maxsize=8)
def _load(path: str) -> Callable[[SpamCandidate], bool]:
    return import_string(path)  # type: ignore[no-any-return]


def spam_check(candidate: SpamCandidate) -> SpamVerdict:
    if not candidate.text:
        return SpamVerdict.CLEAN
    check = _load(settings.MESSAGING_SPAM_FILTER)
    future = _executor().submit(check, candidate)
    try:
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
