"""What access processes sign and check without asking anyone (docs/shake.md):

- a prize's signature, written when it is generated (`prize_sign`);
- a win: the prize, its amount, sponsor and winner (`win_sign`), checked on open;
- a user's record in a round, the prizes (and their sponsors) this user has won,
  which the client carries from one shake to the next (`record_encode` /
  `record_decode`): the caps need no storage on the shake path.

One HMAC-SHA256 key, SHAKE_SIGNING_KEY or, when empty, derived from SECRET_KEY
(so leaking it does not leak SECRET_KEY, and the two never collide)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from functools import cache

from django.conf import settings


@cache
def _key(configured: str, secret: str) -> bytes:
    if configured:
        return configured.encode()
    return hashlib.sha256(b"shake-signing:" + secret.encode()).digest()


def _mac(message: str) -> str:
    key = _key(settings.SHAKE_SIGNING_KEY, settings.SECRET_KEY)
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def mac_of(message: str) -> str:
    """The shake key's HMAC of `message` (other signed shapes, e.g. shake.schedule)."""
    return _mac(message)


def mac_check(message: str, mac: str) -> bool:
    if len(mac) != 64 or not mac.isascii():
        return False
    return hmac.compare_digest(_mac(message), mac)


def prize_sign(
    *,
    prize_id: int,
    round_id: int,
    amount: int,
    kind: str,
    sponsor_id: int,
    extra_shares: int,
    extra_amount: int = 0,
) -> str:
    return _mac(
        f"prize|{prize_id}|{round_id}|{amount}|{kind}|{sponsor_id}|{extra_shares}|{extra_amount}"
    )


def win_sign(*, prize_id: int, round_id: int, user_id: int, amount: int, sponsor_id: int) -> str:
    return _mac(f"win|{prize_id}|{round_id}|{user_id}|{amount}|{sponsor_id}")


def win_check(
    signature: str, *, prize_id: int, round_id: int, user_id: int, amount: int, sponsor_id: int
) -> bool:
    if len(signature) != 64 or not signature.isascii():
        return False  # compare_digest refuses non-ASCII text
    expected = win_sign(
        prize_id=prize_id, round_id=round_id, user_id=user_id, amount=amount, sponsor_id=sponsor_id
    )
    return hmac.compare_digest(expected, signature)


@dataclass(frozen=True, slots=True)
class Record:
    """What a user has won in a round: (prize id, sponsor id) pairs."""

    round_id: int
    user_id: int
    wins: frozenset[tuple[int, int]]

    def sponsor_count(self, sponsor_id: int) -> int:
        return sum(1 for _, sponsor in self.wins if sponsor == sponsor_id)


def record_encode(record: Record) -> str:
    body = json.dumps(
        {"r": record.round_id, "u": record.user_id, "w": sorted(map(list, record.wins))},
        separators=(",", ":"),
    )
    payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return f"{payload}.{_mac('record|' + payload)}"


def record_decode(token: object, *, round_id: int, user_id: int) -> Record | None:
    """The record if `token` is genuine and about this user and round; else None
    (a client without a record, or with someone else's, starts from nothing: the
    process's own cache and the cross-process check still count its wins)."""
    if not isinstance(token, str) or len(token) > 4096 or "." not in token:
        return None
    if not token.isascii():
        return None  # a genuine record is base64 and hex
    payload, _, mac = token.partition(".")
    if not hmac.compare_digest(_mac("record|" + payload), mac):
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        wins = frozenset((int(prize), int(sponsor)) for prize, sponsor in body["w"])
        if body["r"] != round_id or body["u"] != user_id:
            return None
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    return Record(round_id=round_id, user_id=user_id, wins=wins)
