"""The client-visible flags a device receives with its login answer and its
websocket hello.

Accounts (login) and messaging (hello) send them without knowing where they come
from: grayrelease, which sits above accounts, registers its provider in its
AppConfig.ready (`flags_provider_register`). Without a provider, devices get no
flags. The shapes here are the wire's: `{"enabled": bool, "revision": int}` by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypedDict

from accounts.models import Device, User
from accounts.types import VerifiedTicket


class WireFlag(TypedDict):
    enabled: bool
    revision: int


class Flag(Protocol):
    @property
    def enabled(self) -> bool: ...

    @property
    def revision(self) -> int: ...


class LoginFlags(Protocol):
    def __call__(self, *, user: User, device: Device) -> Mapping[str, Flag]: ...


class TicketFlags(Protocol):
    def __call__(self, *, ticket: VerifiedTicket, user_id: int) -> Mapping[str, Flag]: ...


@dataclass(frozen=True, slots=True)
class _Provider:
    at_login: LoginFlags
    for_ticket: TicketFlags


_provider: list[_Provider] = []


def flags_provider_register(*, at_login: LoginFlags, for_ticket: TicketFlags) -> None:
    """Install where flags come from (grayrelease does, in its AppConfig.ready)."""
    _provider[:] = [_Provider(at_login=at_login, for_ticket=for_ticket)]


def _wire(flags: Mapping[str, Flag]) -> dict[str, WireFlag]:
    return {key: {"enabled": f.enabled, "revision": f.revision} for key, f in flags.items()}


def login_flags(*, user: User, device: Device) -> dict[str, WireFlag]:
    """The flags of the device that just logged in (both rows at hand: no query)."""
    return _wire(_provider[0].at_login(user=user, device=device)) if _provider else {}


def device_flags(*, ticket: VerifiedTicket, user_id: int) -> dict[str, WireFlag]:
    """The flags as the ticket's device sees them (the websocket hello)."""
    return _wire(_provider[0].for_ticket(ticket=ticket, user_id=user_id)) if _provider else {}
