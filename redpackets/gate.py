"""The cheap gate in front of a grab (seed 004: most grabbers of a hot packet lose,
and a loser should cost no database transaction).

Per packet, Redis holds the number of shares not yet handed to a grabber
(`left`) and the set of users who got through (`in`). One Lua call answers:

- "go": a share is reserved for this user; the database transaction decides
  (and, should it not grab after all, `gate_release` gives the share back);
- "again": this user got through before (the database has their grab, or is
  about to);
- "empty": no share left; answered at once, without the database;
- "missing": the keys are gone (Redis restarted, evicted): `gate_rebuild` sets
  them from the database (only if still absent) and the call is retried.

The database stays the truth: a gate that lets too many through costs only
transactions that find the packet empty; it can never pay a share twice. With
no Redis (the embedded mode) or Redis down, every grab goes to the database.
"""

from __future__ import annotations

import logging
from enum import StrEnum

import redis
from django.core.cache import cache

from redpackets.models import Packet
from wechat_core.cacheclient import cache_redis

logger = logging.getLogger(__name__)


class GateAnswer(StrEnum):
    GO = "go"
    AGAIN = "again"
    EMPTY = "empty"
    MISSING = "missing"
    UNAVAILABLE = "unavailable"  # no Redis: let the database decide


_ENTER = """
local left = redis.call('GET', KEYS[1])
if not left then return 'missing' end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'again' end
if tonumber(left) <= 0 then return 'empty' end
redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
return 'go'
"""
_REBUILD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('DEL', KEYS[2])
for i = 3, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""
_RELEASE = """
local removed = 1
if ARGV[2] == '0' then removed = redis.call('SREM', KEYS[2], ARGV[1]) end
if removed == 1 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCR', KEYS[1])
end
return 1
"""


def _keys(packet: Packet) -> list[str]:
    # The creation time too, not the id alone: a database restored or recreated
    # (the tests' is, every run) numbers packets again, and must not find the
    # gate of another packet that had the same id. One hash tag: both keys on one
    # Redis Cluster slot.
    name = f"{packet.pk}.{int(packet.created_at.timestamp() * 1_000_000)}"
    return [
        cache.make_key(f"redpacket:{{{name}}}:left"),
        cache.make_key(f"redpacket:{{{name}}}:in"),
    ]


def gate_pass(packet: Packet, user_id: int) -> GateAnswer:
    client = cache_redis()
    if client is None:
        return GateAnswer.UNAVAILABLE
    try:
        answer = client.eval(_ENTER, 2, *_keys(packet), str(user_id))
    except redis.RedisError:
        logger.warning("red packet gate unavailable; the database decides", exc_info=True)
        return GateAnswer.UNAVAILABLE
    return GateAnswer(answer.decode() if isinstance(answer, bytes) else str(answer))


def gate_rebuild(packet: Packet, left: int, grabbers: list[int], ttl_seconds: int) -> None:
    """Set the packet's gate from the database's count and grabbers (if absent)."""
    client = cache_redis()
    if client is None:
        return
    try:
        client.eval(
            _REBUILD,
            2,
            *_keys(packet),
            str(left),
            str(max(ttl_seconds, 1)),
            *(str(user) for user in grabbers),
        )
    except redis.RedisError:
        logger.warning("red packet gate not rebuilt", exc_info=True)


def gate_release(packet: Packet, user_id: int, *, keep_member: bool = False) -> None:
    """Give back a share the gate reserved for a user who did not grab it (with
    `keep_member`: who had grabbed before, so stays in the set)."""
    client = cache_redis()
    if client is None:
        return
    try:
        client.eval(_RELEASE, 2, *_keys(packet), str(user_id), "1" if keep_member else "0")
    except redis.RedisError:
        logger.warning("red packet gate share not released", exc_info=True)


def gate_drop(packet: Packet) -> None:
    """Forget the packet's gate (tests: Redis lost; refunds: nothing left to gate)."""
    client = cache_redis()
    if client is not None:
        try:
            client.delete(*_keys(packet))
        except redis.RedisError:
            logger.warning("red packet gate not dropped", exc_info=True)
