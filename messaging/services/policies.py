"""Rules another app attaches to a conversation kind (the official accounts' chats).

Messaging knows how to number, store and deliver; it does not know what makes an
official account's chat open to a member or what a message to it sets off. The
app that owns the kind registers a policy (in its AppConfig.ready): `before_send`
may refuse a member's message, `after_send` runs inside the send's transaction,
after the message is stored, and schedules whatever follows (on commit).
Whatever `before_send` returns (the rows it checked, say) is handed to
`after_send` as `checked`, so the send's transaction reads them once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from messaging.types import OutgoingContent


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A member's message, just stored."""

    message_id: int
    conversation_id: int
    sender_id: int
    kind: str
    text: str
    created_at: dt.datetime


class KindPolicy(Protocol):
    def before_send(
        self, *, user_id: int, conversation_id: int, content: OutgoingContent
    ) -> Any: ...

    def after_send(self, *, sent: SentMessage, checked: Any) -> None: ...


_policies: dict[str, KindPolicy] = {}


def kind_policy_register(*, kind: str, policy: KindPolicy) -> None:
    _policies[kind] = policy


def kind_policy(kind: str) -> KindPolicy | None:
    return _policies.get(kind)
