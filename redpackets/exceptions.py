"""Errors of red packets, each with a stable code (docs/api.md, docs/protocol.md)."""

from __future__ import annotations

from wechat_core.errors import Conflict, InvalidInput, NotFound, PermissionRefused


class PacketInvalid(InvalidInput):
    """Amount, shares, kind, greeting or client id outside the limits (details say which)."""

    code = "redpacket_invalid"
    default_message = "This red packet is not valid."


class RedPacketsDisabled(PermissionRefused):
    """The gray-release feature (the kill switch) is off for this user."""

    code = "redpackets_disabled"
    default_message = "Red packets are not available to you right now."


class PacketNotFound(NotFound):
    code = "redpacket_not_found"
    default_message = "No such red packet (in a conversation of yours)."


class OwnPacket(PermissionRefused):
    code = "redpacket_own"
    default_message = "You cannot open your own red packet in a 1:1 chat."


class ClientIdReused(Conflict):
    code = "redpacket_client_id_reused"
    default_message = "This client id was already used for a different red packet."
