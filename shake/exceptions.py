"""Errors of shake activities, each with a stable code (docs/api.md, docs/protocol.md)."""

from __future__ import annotations

from wechat_core.errors import Conflict, InvalidInput, NotFound, PermissionRefused


class PlanInvalid(InvalidInput):
    """An activity's plan is incomplete or inconsistent (operators' side)."""

    code = "shake_plan_invalid"
    default_message = "This activity plan is not valid."


class AlreadyApproved(Conflict):
    code = "shake_already_approved"
    default_message = "This activity is approved already."


class WinInvalid(PermissionRefused):
    code = "shake_win_invalid"
    default_message = "This win is not genuine, not yours, or opened too late."


class PrizeUnknown(NotFound):
    code = "shake_prize_unknown"
    default_message = "No such packet in that round."


class RoundUnknown(NotFound):
    code = "shake_round_unknown"
    default_message = "No such round."


class ControlRefused(Conflict):
    """A live-control command that does not fit the round's state (start a started
    round, pause one that is not running, correct the countdown of a started one)."""

    code = "shake_control_refused"
    default_message = "This command does not fit the round's state."


class SharesUnavailable(PermissionRefused):
    code = "shake_shares_unavailable"
    default_message = (
        "No extra shares to pass on: not your sponsor packet, not opened, none left, or too late."
    )


class AssetInvalid(InvalidInput):
    """A sponsor asset that cannot be stored (not a supported image, too large, not
    reachable), or a report of held assets that is malformed."""

    code = "shake_asset_invalid"
    default_message = "This asset is not a supported image."


class AssetUnknown(NotFound):
    code = "shake_asset_unknown"
    default_message = "No such asset."


class ActivityNotClosable(Conflict):
    """An activity that cannot be closed yet (a round not over, winners still able to
    open, passed-on shares still open), or whose budget cannot pay what it owes."""

    code = "shake_not_closable"
    default_message = "This activity cannot be closed yet."
