"""Semantic versions (semver.org 2.0.0) and their precedence, for client-version rules.

Operators type range bounds, which must be strict semantic versions
(`2.1.0`, `3.0.0-beta.2`). Devices declare their version at login in the
looser shape accounts accepts (leading zeros allowed); `parse_client_version`
reads those. Both become a `VersionKey`, a tuple that compares the way semver
orders precedence: numbers numerically, a pre-release below its release,
numeric identifiers below alphanumeric ones, build metadata ignored.

Pure and DB-free: evaluation compares keys parsed once, never strings.
"""

from __future__ import annotations

import re

# (major, minor, patch, pre-release part): the last is (1,) for a release and
# (0, identifier, ...) for a pre-release, each identifier (0, number) or (1, text).
PreRelease = tuple[int | tuple[int, int | str], ...]
VersionKey = tuple[int, int, int, PreRelease]

_NUMBER = r"0|[1-9]\d*"
_IDENTIFIER = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
STRICT = re.compile(
    rf"^(?P<major>{_NUMBER})\.(?P<minor>{_NUMBER})\.(?P<patch>{_NUMBER})"
    rf"(?:-(?P<pre>{_IDENTIFIER}(?:\.{_IDENTIFIER})*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
# What accounts.validators lets a device declare.
_LENIENT = re.compile(
    r"^(?P<major>\d{1,9})\.(?P<minor>\d{1,9})\.(?P<patch>\d{1,9})"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
MAX_LENGTH = 32
_RELEASE: tuple[int] = (1,)


class InvalidVersion(ValueError):
    pass


def _key(match: re.Match[str]) -> VersionKey:
    pre = match.group("pre")
    if pre is None:
        tail: PreRelease = _RELEASE
    else:
        tail = (0, *((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")))
    return (int(match.group("major")), int(match.group("minor")), int(match.group("patch")), tail)


def parse_version(text: str) -> VersionKey:
    """A strict semantic version's key; InvalidVersion says what is wrong."""
    if len(text) > MAX_LENGTH:
        raise InvalidVersion(f"{text[:40]!r} is longer than {MAX_LENGTH} characters.")
    match = STRICT.fullmatch(text)
    if match is None:
        raise InvalidVersion(
            f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 2.1.0 or 3.0.0-beta.1)."
        )
    return _key(match)


def parse_client_version(text: str | None) -> VersionKey | None:
    """A device's declared version, or None when it has none we can read."""
    if not text or len(text) > MAX_LENGTH:
        return None
    match = _LENIENT.fullmatch(text)
    return None if match is None else _key(match)
