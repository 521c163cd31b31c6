"""Conversations across data centres (issue 17).

A conversation is mastered in the data centre that created it (its id lies in
that data centre's block): only there are its events numbered, so every member in
every data centre sees one order. Each event of a conversation with a member
homed elsewhere goes into the replication log in the transaction that numbered it
(`event_replicate`, called by services.events.event_store); the other data centres
replay it: the conversation and its members (with every system event, which is
how membership changes, and with the first event replicated), the message with
its id and seq, and then the usual delivery into the logs of the members homed
there (only they have a log there: wechat_core.sync.log.local_users). Whether a
conversation has members homed elsewhere is kept on it (`has_remote_members`),
so that a message costs the outbox row and no lookup of members.

A member homed elsewhere sends at home: the send is checked there against the
local copy and written into home's replication log as `message_forward`; the
conversation's data centre appends it with the sender's client_msg_id (so a
resent one is stored once) and it comes back like any event. The sender's ack
then says `forwarded` (message id and seq 0; docs/protocol.md §2b). The master
checks again what may have changed since: a sender no longer a member, or a
block between a 1:1 chat's two that reached the master before the send; such a
send is dropped (it never reaches any log; the sender's ack already said forwarded).

A member's read position is moved at their home (services.sending.conversation_read)
and goes out as `membership_read` (`read_replicate`); the other data centres' copies
of the membership take it only forward, so a duplicate or a late older position
changes nothing. The members that travel with system events carry their read
positions too (a member invited elsewhere starts read up to the invitation, as
here), taken the same way, only forward.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from accounts.replication import blocked_either_way
from messaging.models import (
    Conversation,
    ConversationKind,
    DeliveryCursor,
    Membership,
    Message,
    MessageKind,
    direct_peer,
)
from messaging.store import store
from wechat_core import datacenters
from wechat_core.replication.log import (
    replay_defer,
    replay_deferred,
    replay_handler_register,
    replicate,
)
from wechat_core.sync.log import local_users, sequences_ensure
from wechat_core.sync.models import UserSequence


def conversation_master(conversation_id: int) -> str:
    """The data centre whose id block holds the conversation (here, with one)."""
    if not datacenters.enabled():
        return datacenters.here()
    return datacenters.origin_of_id(conversation_id) or datacenters.here()


def _members(conversation_id: int) -> list[dict[str, Any]]:
    return [
        {
            "user_id": user_id,
            "role": role,
            "joined_seq": joined,
            "left_seq": left,
            "joined_at": joined_at.isoformat(),
            "read_seq": read,
        }
        for user_id, role, joined, left, joined_at, read in Membership.objects.filter(
            conversation_id=conversation_id
        ).values_list("user_id", "role", "joined_seq", "left_seq", "joined_at", "read_seq")
    ]


def _has_remote_member(conversation_id: int) -> bool:
    return (
        Membership.objects.filter(conversation_id=conversation_id)
        .exclude(user__home_datacenter_id=datacenters.here())
        .exists()
    )


def _remote_members(conversation_id: int, *, membership_changed: bool) -> tuple[bool, bool]:
    """(does the conversation have a member homed elsewhere, was that just worked
    out). The answer is kept on the conversation (`has_remote_members`) and worked
    out again only when membership may have changed: with a system event (every
    change of a conversation's members comes with one, in its transaction) or when
    unknown (a 1:1 chat's members come with none)."""
    known = (
        Conversation.objects.filter(pk=conversation_id)
        .values_list("has_remote_members", flat=True)
        .first()
    )
    if known is not None and not membership_changed:
        return known, False
    remote = _has_remote_member(conversation_id)
    if remote != known:
        Conversation.objects.filter(pk=conversation_id).update(has_remote_members=remote)
    return remote, True


def _conversation_descriptor(conversation_id: int) -> dict[str, Any]:
    conversation = Conversation.objects.get(pk=conversation_id)
    return {
        "id": conversation.pk,
        "kind": conversation.kind,
        "direct_key": conversation.direct_key,
        "name": conversation.name,
        "announcement": conversation.announcement,
        "owner_id": conversation.owner_id,
        "member_count": conversation.member_count,
        "created_at": conversation.created_at.isoformat(),
    }


def event_replicate(
    *,
    conversation_id: int,
    message_id: int,
    seq: int,
    created_at: dt.datetime,
    sender_id: int | None,
    kind: str,
    body: dict[str, Any],
    client_msg_id: str | None,
) -> None:
    """Called with every event numbered here, in its transaction (the conversation
    is locked). The conversation and its members go with the events that may
    change them (system events) and with the first one replicated; the others
    carry the conversation's id only."""
    if not datacenters.enabled():
        return
    remote, whole = _remote_members(conversation_id, membership_changed=kind == MessageKind.SYSTEM)
    if not remote:
        return
    replicate(
        "conversation_event",
        {
            "conversation": (
                _conversation_descriptor(conversation_id) if whole else {"id": conversation_id}
            ),
            "members": _members(conversation_id) if whole else None,
            "message": {
                "id": message_id,
                "seq": seq,
                "sender_id": sender_id,
                "kind": kind,
                "body": body,
                "client_msg_id": client_msg_id,
                "created_at": created_at.isoformat(),
            },
        },
    )


def message_forward(
    *, sender_id: int, conversation_id: int, kind: str, body: dict[str, Any], client_msg_id: str
) -> None:
    """A send of a user homed here into a conversation mastered elsewhere."""
    replicate(
        "message_forward",
        {
            "sender_id": sender_id,
            "conversation_id": conversation_id,
            "kind": kind,
            "body": body,
            "client_msg_id": client_msg_id,
        },
    )


def read_replicate(conversation: Conversation, *, user_id: int, read_seq: int) -> None:
    """Called when a member's read position moved here, in that transaction: the
    other data centres hold copies of the membership when the conversation is
    mastered elsewhere or has members homed elsewhere (else nothing goes out)."""
    if not datacenters.enabled():
        return
    if conversation_master(conversation.pk) == datacenters.here():
        remote = conversation.has_remote_members
        if remote is None:  # not worked out yet (a 1:1 chat's members come with no event)
            remote, _ = _remote_members(conversation.pk, membership_changed=False)
        if not remote:
            return
    replicate(
        "membership_read",
        {"conversation_id": conversation.pk, "user_id": user_id, "read_seq": read_seq},
    )


# --- Replay -------------------------------------------------------------------------------


def _conversation_apply(data: dict[str, Any], origin: str) -> None:
    fields = {key: data[key] for key in ("kind", "name", "announcement", "owner_id")}
    fields["member_count"] = data["member_count"]
    direct_key = data["direct_key"]
    if direct_key is not None:
        clash = Conversation.objects.filter(direct_key=direct_key).exclude(pk=data["id"])
        if clash.exists():
            # Both data centres opened the pair's chat before either heard of the
            # other's: both chats stay, each in one order (docs/deploy.md).
            direct_key = f"{direct_key}@{origin}"[:41]
    fields["direct_key"] = direct_key
    if data.get("created_at"):  # absent from entries written before it travelled
        fields["created_at"] = dt.datetime.fromisoformat(data["created_at"])
    Conversation.objects.update_or_create(pk=data["id"], defaults=fields)
    DeliveryCursor.objects.get_or_create(conversation_id=data["id"])


def _members_apply(conversation_id: int, members: list[dict[str, Any]]) -> None:
    for member in members:
        defaults = {
            "role": member["role"],
            "joined_seq": member["joined_seq"],
            "left_seq": member["left_seq"],
        }
        if member.get("joined_at"):  # absent from entries written before it travelled
            defaults["joined_at"] = dt.datetime.fromisoformat(member["joined_at"])
        read = member.get("read_seq")  # absent from entries written before it travelled
        membership, created = Membership.objects.update_or_create(
            conversation_id=conversation_id,
            user_id=member["user_id"],
            defaults=defaults,
            create_defaults={**defaults, "read_seq": read or 0},
        )
        if not created and read is not None and read > membership.read_seq:
            # Only forward: the member reads at home, where the master's copy lags.
            _read_move(conversation_id, member["user_id"], read)
    sequences_ensure(member["user_id"] for member in members)


def _event_apply(payload: dict[str, Any], origin: str) -> None:
    conversation = payload["conversation"]
    conversation_id = int(conversation["id"])
    if "kind" in conversation:  # the whole conversation (else only its id: unchanged)
        _conversation_apply(conversation, origin)
    if payload.get("members") is not None:
        _members_apply(conversation_id, payload["members"])
    message = payload["message"]
    row = Message(
        pk=message["id"],
        conversation_id=conversation_id,
        seq=message["seq"],
        sender_id=message["sender_id"],
        kind=message["kind"],
        body=message["body"],
        client_msg_id=message["client_msg_id"],
        created_at=dt.datetime.fromisoformat(message["created_at"]),
    )
    # The messages of a run of events are inserted together, before their delivery
    # (a deferred action: see _Appends); a recall first inserts what precedes it,
    # since the message it recalls may be among them.
    appends = replay_deferred(("append", 0), _Appends)
    if appends is not None and message["kind"] != MessageKind.RECALL:
        appends.add(row)
    else:
        if appends is not None:
            appends()
        _messages_insert([row])
        if message["kind"] == MessageKind.RECALL:
            Message.objects.filter(
                pk=message["body"].get("message_id"), recalled_at__isnull=True
            ).update(recalled_at=dt.datetime.fromisoformat(message["created_at"]))
        _last_seqs_move({conversation_id: row.seq})
    # Into the logs of the members homed here, in the conversation's order: once
    # for the conversations of a run of events in the batch being replayed.
    _to_deliver.add(conversation_id)
    replay_defer(("deliver", 0), _deliver_pending)


def _messages_insert(rows: list[Message]) -> None:
    # One statement (INSERT … ON CONFLICT (id) DO UPDATE) however many rows.
    Message.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["id"],
        update_fields=["conversation", "seq", "sender", "kind", "body", "client_msg_id"],
    )


def _last_seqs_move(last_seqs: dict[int, int]) -> None:
    for conversation_id, seq in sorted(last_seqs.items()):
        Conversation.objects.filter(pk=conversation_id, last_seq__lt=seq).update(last_seq=seq)


class _Appends:
    """The messages of a run of replayed events, inserted in one statement and each
    conversation's last_seq moved once, when the run ends (before its delivery:
    ("append", 0) sorts before ("deliver", 0)): a statement or two per event cost
    most of a batch's time. A row that fails (a missing sender) fails the batch as
    a whole, which is then halved down to it (wechat_core.replication.replay)."""

    def __init__(self) -> None:
        self.rows: list[Message] = []

    def add(self, row: Message) -> None:
        self.rows.append(row)

    def __call__(self) -> None:
        rows, self.rows = self.rows, []
        if not rows:
            return
        _messages_insert(rows)
        last_seqs: dict[int, int] = {}
        for row in rows:
            last_seqs[row.conversation_id] = max(row.seq, last_seqs.get(row.conversation_id, 0))
        _last_seqs_move(last_seqs)


_to_deliver: set[int] = set()


def _deliver_pending() -> None:
    conversation_ids = sorted(_to_deliver)
    _to_deliver.clear()
    # The sequences of every local member of these conversations, locked at once in
    # id order (as a local send locks its recipients'): delivering conversation
    # after conversation would lock them in no order across the batch, and a
    # concurrent send could deadlock with it.
    members = Membership.objects.filter(conversation_id__in=conversation_ids).values("user_id")
    list(
        UserSequence.objects.select_for_update(no_key=True)
        .filter(user_id__in=members)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )
    for conversation_id in conversation_ids:
        # Fewer than a delivery batch delivered: nothing is left (no call to see it).
        while (
            store().conversation_deliver(conversation_id=conversation_id)
            >= settings.MESSAGING_DELIVERY_BATCH
        ):
            pass


def _forward_apply(payload: dict[str, Any], origin: str) -> None:
    """Append a member's send forwarded from their home (checked there)."""
    from messaging.services.events import event_store

    sender_id = int(payload["sender_id"])
    conversation_id = int(payload["conversation_id"])
    client_msg_id = str(payload["client_msg_id"])
    if store().previous_send(sender_id, client_msg_id) is not None:
        return  # resent by the client at home: stored once
    conversation = (
        Conversation.objects.select_for_update(no_key=True).filter(pk=conversation_id).first()
    )
    member = Membership.objects.filter(
        Q(left_seq__isnull=True), conversation_id=conversation_id, user_id=sender_id
    ).exists()
    if conversation is None or not member:
        return  # left, or removed, meanwhile: the send is dropped as at home it would be refused
    if conversation.kind == ConversationKind.DIRECT and blocked_either_way(
        sender_id, direct_peer(conversation.direct_key, sender_id)
    ):
        return  # a block the sender's home had not heard of yet: dropped, as refused there
    try:
        with transaction.atomic():
            event_store(
                conversation_id=conversation_id,
                member_count=conversation.member_count,
                sender_id=sender_id,
                kind=str(payload["kind"]),
                body=dict(payload["body"]),
                client_msg_id=client_msg_id,
            )
    except IntegrityError:
        if store().previous_send(sender_id, client_msg_id) is None:
            raise


def _read_move(conversation_id: int, user_id: int, read_seq: int) -> None:
    Membership.objects.filter(
        conversation_id=conversation_id, user_id=user_id, read_seq__lt=read_seq
    ).update(read_seq=read_seq)


def _read_apply(payload: dict[str, Any], origin: str) -> None:
    """Move a member's copy forward to the position read at their home. A copy not
    here (yet) is left alone: with three data centres or more the conversation may
    come from its master after the read from the member's home, and the member's
    next read, or the next system event's members, bring the position then."""
    _read_move(int(payload["conversation_id"]), int(payload["user_id"]), int(payload["read_seq"]))


def _event_keys(payload: dict[str, Any]) -> list[str]:
    return [f"conversation:{int(payload['conversation']['id'])}"]


def _forward_keys(payload: dict[str, Any]) -> list[str]:
    return [f"conversation:{int(payload['conversation_id'])}"]


_read_keys = _forward_keys  # after the conversation's events from the same origin


def replay_handlers_register() -> None:
    # Batched: its rows (copies of conversations mastered elsewhere, their cursors,
    # and the sequences locked at once above) are not locked by local sends first.
    # Ordered per conversation: an event waits behind a parked one of its
    # conversation (its first, which brings the conversation, above all), not
    # behind other conversations' (wechat_core.replication.log).
    replay_handler_register("conversation_event", _event_apply, batchable=True, keys=_event_keys)
    replay_handler_register("message_forward", _forward_apply, keys=_forward_keys)
    # One a transaction: at the master, group changes lock these membership rows
    # too, in their own order.
    replay_handler_register("membership_read", _read_apply, keys=_read_keys)


def is_local_user(user_id: int) -> bool:
    return user_id in local_users([user_id])
