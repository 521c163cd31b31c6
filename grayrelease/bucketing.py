"""Sticky percentage bucketing (Sentry's in_rollout_group, PostHog's get_hash).

Every (feature, user) pair has a fixed bucket in [0, 10000), one per basis point
(0.01 %), from a SHA-1 of "<feature salt>.<user id>". A user is in a rollout of
P basis points when their bucket is below P. Hence:

- sticky: the same user always gets the same answer for the same percentage,
  in every process, forever (no state, no randomness at run time);
- monotone: raising P only adds users; lowering it removes the users with the
  highest buckets first, which are the last ones a raise had added;
- independent: each feature has its own random salt, so the first 1 % of one
  rollout is not the first 1 % of every other.

Pure and DB-free. SHA-1 is a mixing function here, not a security measure.
"""

from __future__ import annotations

import hashlib

BASIS_POINTS = 10_000  # 100 %


def salt_prefix(salt: str) -> bytes:
    """What evaluation keeps per feature: the hashed text up to the user id."""
    return salt.encode() + b"."


def bucket_of(prefix: bytes, subject_id: int) -> int:
    """The bucket for a salt prefix (see salt_prefix); the hot path's form of bucket()."""
    digest = hashlib.sha1(prefix + b"%d" % subject_id, usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big") % BASIS_POINTS


def bucket(*, salt: str, subject_id: int) -> int:
    """The subject's bucket in [0, 10000) for this salt."""
    return bucket_of(salt_prefix(salt), subject_id)


def in_rollout(*, salt: str, subject_id: int, percentage_bp: int) -> bool:
    """Whether the subject is among the first `percentage_bp` basis points."""
    if percentage_bp >= BASIS_POINTS:
        return True
    if percentage_bp <= 0:
        return False
    return bucket(salt=salt, subject_id=subject_id) < percentage_bp
