"""Lottery quotas in the access process (seed 003, docs/shake.md "Quotas").

A prize belongs to a class: `cash`, or `<kind>:<sponsor id>` for an item (a
sponsor packet). A round's quota table caps each class at so many per second
across all access processes, checked by a conditional atomic counter: one Redis
call checks the count against the quota and adds one (`_QUOTA_TAKE`). When a class
is over quota for this second, the draw falls back to the other classes the
process holds, until nothing is left. The table is immutable and swapped whole
when a new version is loaded (the seed's double buffer), so a draw always sees one
consistent version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# KEYS[1]: the class's counter for this second; ARGV: quota, ttl (s). 1: taken.
QUOTA_TAKE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


def class_of(kind: str, sponsor_id: int) -> str:
    return "cash" if kind == "cash" else f"{kind}:{sponsor_id}"


@dataclass(frozen=True, slots=True)
class QuotaTable:
    version: int = 0
    per_second: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, version: int, per_second: Mapping[str, object]) -> QuotaTable:
        clean = {
            str(name): int(limit)
            for name, limit in per_second.items()
            if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0
        }
        return cls(version, MappingProxyType(clean))

    def limit(self, prize_class: str) -> int | None:
        return self.per_second.get(prize_class)
