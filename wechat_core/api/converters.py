"""URL converters."""

from __future__ import annotations


class IdConverter:
    """A positive database id that fits a bigint; longer digit strings do not match (404)."""

    regex = "[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)
