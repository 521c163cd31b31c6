"""Errors of the accounts domain, each with a stable code (see docs/api.md)."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from wechat_core.errors import (
    Conflict,
    Gone,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionRefused,
    RateLimited,
)


class TicketInvalid(NotAuthenticated):
    code = "ticket_invalid"
    default_message = gettext_noop("The ticket is not valid; log in again.")


class TicketExpired(NotAuthenticated):
    code = "ticket_expired"
    default_message = gettext_noop("The ticket has expired; log in again.")


class TicketRevoked(NotAuthenticated):
    code = "ticket_revoked"
    default_message = gettext_noop("The ticket was revoked (logged out); log in again.")


class TicketRefused(PermissionRefused):
    """The data layer's refusal: the ticket does not cover the data asked for."""

    code = "ticket_refused"
    default_message = gettext_noop("The ticket does not cover this data.")


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    default_message = gettext_noop("The phone number, e-mail or password is wrong.")


class WrongPassword(PermissionRefused):
    code = "wrong_password"
    default_message = "The current password is wrong."


class AccountDisabled(PermissionRefused):
    code = "account_disabled"
    default_message = gettext_noop("This account is disabled.")


class LoginLocked(RateLimited):
    code = "login_locked"


class AccountExists(Conflict):
    code = "account_exists"


class WeChatIdTaken(Conflict):
    code = "wechat_id_taken"
    default_message = gettext_noop("This WeChat ID is already taken.")


class WeChatIdAlreadySet(Conflict):
    code = "wechat_id_already_set"
    default_message = gettext_noop("Your WeChat ID has already been chosen and cannot change.")


class UserNotFound(NotFound):
    code = "user_not_found"
    default_message = gettext_noop("No such user.")


class DeviceNotFound(NotFound):
    code = "device_not_found"
    default_message = gettext_noop("No such device.")


class FriendRequestNotFound(NotFound):
    code = "friend_request_not_found"
    default_message = gettext_noop("No such friend request.")


class FriendRequestExpired(Gone):
    code = "friend_request_expired"
    default_message = gettext_noop("The friend request has expired.")


class FriendRequestClosed(Conflict):
    code = "friend_request_closed"
    default_message = gettext_noop("The friend request was already answered.")


class NotAFriend(NotFound):
    code = "not_a_friend"
    default_message = gettext_noop("This user is not in your contacts.")


class AlreadyFriends(Conflict):
    code = "already_friends"
    default_message = gettext_noop("You are already friends.")


class FriendLimitReached(Conflict):
    code = "friend_limit_reached"


class NotBlocked(NotFound):
    code = "not_blocked"
    default_message = gettext_noop("This user is not blocked.")


class BlockedByUser(PermissionRefused):
    code = "blocked"
    default_message = gettext_noop("This user does not accept requests or messages from you.")


class YouBlockedUser(Conflict):
    code = "you_blocked_user"
    default_message = gettext_noop("You have blocked this user; unblock them first.")


class CannotTargetSelf(InvalidInput):
    code = "cannot_target_self"
    default_message = gettext_noop("You cannot do this to yourself.")


class InvalidImage(InvalidInput):
    code = "invalid_image"
