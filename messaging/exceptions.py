"""Errors of the messaging domain, each with a stable code (docs/protocol.md lists them)."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from wechat_core.errors import (
    Conflict,
    Gone,
    InvalidInput,
    NotFound,
    PermissionRefused,
    RateLimited,
)


class ConversationNotFound(NotFound):
    code = "conversation_not_found"
    default_message = gettext_noop("No such conversation, or you are not in it.")


class MessageNotFound(NotFound):
    code = "message_not_found"
    default_message = gettext_noop("No such message in your conversations.")


class AttachmentNotFound(NotFound):
    code = "attachment_not_found"
    default_message = gettext_noop("No such attachment, or you may not read it.")


class NotFriends(PermissionRefused):
    code = "not_friends"
    default_message = gettext_noop(
        "You can only message people who are in your contacts and have you in theirs."
    )


class SystemAccountReplies(PermissionRefused):
    """A reply to a system account (the monitoring account's alerts): nobody reads it."""

    code = "system_account"
    default_message = gettext_noop("This is a system account; replies are not read.")


class NotAllowed(PermissionRefused):
    code = "not_allowed"
    default_message = gettext_noop("Only the group's owner or admins may do this.")


class MessageRejected(PermissionRefused):
    code = "message_rejected"
    default_message = gettext_noop("The message was rejected as spam.")


class ClientMessageIdReused(Conflict):
    code = "client_msg_id_reused"
    default_message = gettext_noop("This client_msg_id was already used for another conversation.")


class GroupFull(Conflict):
    code = "group_full"


class AlreadyMember(Conflict):
    code = "already_member"
    default_message = gettext_noop("Already in the group.")


class RecallWindowPassed(Gone):
    code = "recall_window_passed"


class InvalidContent(InvalidInput):
    code = "invalid_content"


class Throttled(RateLimited):
    """Too many messages: the client must wait `retry_after` seconds (tier says how hard)."""

    code = "throttled"

    def __init__(self, message: str, *, retry_after: float, tier: int) -> None:
        super().__init__(message, retry_after=retry_after, details={"tier": tier})
        self.tier = tier
