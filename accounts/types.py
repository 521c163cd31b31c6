"""Typed values the accounts services and selectors return or accept."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from uuid import UUID

from accounts.models import Device, FriendRequest, Friendship, User


@dataclass(frozen=True, slots=True)
class VerifiedTicket:
    """Proof that a request carries a live ticket for `user_id` on `device_id`.

    Only accounts.tickets creates these, and it seals them: the data layer
    (`ticket_require`) refuses any VerifiedTicket whose seal does not match, so
    a caller cannot forge one from a bare user id.
    """

    ticket_id: int
    user_id: int
    device_id: int
    expires_at: float
    seal: str
    # The device's platform and client version at login (a device that logs in
    # again gets a new ticket): labels for monitoring, not sealed, not authority.
    platform: str = ""
    client_version: str = ""

    def __repr__(self) -> str:  # the seal is not secret, but keep reprs short
        return f"VerifiedTicket(ticket_id={self.ticket_id}, user_id={self.user_id})"


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    platform: str
    client_version: str
    name: str
    device_uuid: UUID | None = None


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """What other apps may know of a user on a device: who, where their data
    lives, and what client they run (gray-release targeting). `device_id`,
    `platform` and `client_version` are None for the user outside any device."""

    user_id: int
    wechat_id: str | None
    home_datacenter: str
    home_campus: str
    device_id: int | None = None
    platform: str | None = None
    client_version: str | None = None


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: User
    device: Device
    ticket: str
    expires_at: dt.datetime

    def __repr__(self) -> str:
        return f"LoginResult(user={self.user.pk}, device={self.device.pk}, ticket=[redacted])"


@dataclass(frozen=True, slots=True)
class FriendRequestOutcome:
    """What sending a request did: left a pending request, or made you friends at once
    (they had asked you too, or still had you in their contacts)."""

    request: FriendRequest | None
    friendship: Friendship | None


@dataclass(frozen=True, slots=True)
class ContactRelation:
    """Where two users stand, from the first one's point of view."""

    i_have_them: bool
    they_have_me: bool
    i_blocked_them: bool
    they_blocked_me: bool

    @property
    def mutual(self) -> bool:
        """Friends on both sides and no block either way."""
        return (
            self.i_have_them
            and self.they_have_me
            and not self.i_blocked_them
            and not self.they_blocked_me
        )
