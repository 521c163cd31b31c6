"""Developers' `regex` keyword patterns, run on users' text with RE2.

A pattern is written by whoever owns an account and runs on whatever a follower
sends. Python's `re` backtracks: `^(a+)+$` on "a"*27+"!" took 17.6 s, doubling
with every character, on a worker every queue shares (issue 11). RE2 (Google's
engine, the `google-re2` package) matches in time linear in the text, whatever
the pattern, by leaving out the features that need backtracking:
backreferences (`\\1`) and lookaround (`(?=`, `(?!`, `(?<=`, `(?<!`). Counted
repetitions go up to {1000}. A pattern RE2 cannot compile is refused when it is
saved, with RE2's reason; one saved before (under `re`) never matches.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import re2

logger = logging.getLogger(__name__)
# The part of a user's text a pattern sees.
TEXT_MAX = 1000
# RE2 compiles within this much memory or refuses the pattern (its default: 8 MiB).
MAX_MEMORY_BYTES = 8 << 20


class PatternRefused(ValueError):
    """A pattern RE2 cannot compile; the message says why, for the developer."""


def _options() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.never_capture = True  # only "does it match" is asked
    options.log_errors = False  # the reason goes to the developer, not stderr
    options.max_mem = MAX_MEMORY_BYTES
    return options


@functools.lru_cache(maxsize=1024)
def pattern_compile(pattern: str) -> Any:
    """The compiled pattern (case-insensitive), or PatternRefused."""
    try:
        return re2.compile(pattern, _options())
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", errors="replace")
        raise PatternRefused(
            f"{reason} (patterns use RE2 syntax: no backreferences such as \\1, "
            "no lookahead or lookbehind, repetition counts up to 1000)"
        ) from error


def pattern_search(pattern: str, text: str) -> bool:
    """Whether `pattern` matches anywhere in (the first TEXT_MAX characters of) `text`."""
    try:
        compiled = pattern_compile(pattern)
    except PatternRefused as error:
        logger.warning("keyword pattern %r no longer compiles: %s", pattern[:80], error)
        return False
    return compiled.search(text[:TEXT_MAX]) is not None
