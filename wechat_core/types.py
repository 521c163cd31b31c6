"""Typed values shared across apps."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CampusState:
    code: str
    datacenter: str
    name: str
    blocked: bool
    endpoints: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where something lives: a data centre and a campus in it."""

    datacenter: str
    campus: str
