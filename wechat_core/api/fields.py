"""Serializer fields that refuse values of the wrong JSON type instead of coercing.

DRF's defaults turn 123 into "123" and "true" into True; an API that promises a
clear error for wrong types must not guess.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

MAX_ID = 2**63 - 1


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class IdField(serializers.IntegerField):
    """A database id: a JSON integer between 1 and 2**63 - 1."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


# One client-visible flag, as the login answer (accounts) and the flags endpoint
# (grayrelease) carry it: one shape for both, in the layer below them. (A comment,
# not a docstring: a docstring would become the schema component's description.)
class FlagOutput(serializers.Serializer[Any]):
    enabled = serializers.BooleanField()
    revision = serializers.IntegerField(
        help_text="Keep the value with the highest revision you have seen."
    )
