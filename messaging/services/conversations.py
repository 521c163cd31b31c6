"""1:1 chats and groups: open, create, invite, remove, leave, rename, announce, roles;
and each member's own settings of a chat (mute, pin).

Every change to a group is also an event in it (a system notice), numbered and
delivered like a message, so members learn of it through SYNC in the same order
as the messages around it. A member receives the events from the notice of
their joining through the notice of their leaving.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, When
from django.utils import timezone

from accounts.selectors import contact_relation
from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from messaging.exceptions import (
    AlreadyMember,
    ConversationNotFound,
    GroupFull,
    NotAllowed,
    NotFriends,
)
from messaging.models import (
    Conversation,
    ConversationKind,
    DeliveryCursor,
    MemberRole,
    Membership,
    Message,
    MessageKind,
)
from messaging.services.events import conversation_lock, event_append, membership_require
from messaging.wire import ConversationSettingsPayload
from wechat_core.errors import InvalidInput
from wechat_core.sync.log import entry_append, sequences_ensure
from wechat_core.sync.models import EntryKind


def _direct_key(first: int, second: int) -> str:
    low, high = sorted((first, second))
    return f"{low}:{high}"


def _require_friends(ticket: VerifiedTicket, user_id: int, others: list[int]) -> None:
    for other_id in others:
        if other_id == user_id:
            raise InvalidInput("You are already in the conversation.")
        if not contact_relation(ticket=ticket, user_id=user_id, other_id=other_id).mutual:
            raise NotFriends(
                "You can only add people who are in your contacts and have you in theirs.",
                details={"user_id": other_id},
            )


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > settings.MESSAGING_GROUP_NAME_MAX_CHARS:
        raise InvalidInput(
            f"A group name has 1-{settings.MESSAGING_GROUP_NAME_MAX_CHARS} characters.",
            details={"fields": {"name": ["Invalid length."]}},
        )
    return name


def direct_conversation_ensure(first_id: int, second_id: int) -> Conversation:
    """The 1:1 chat of two users, created on first use; whoever may open it is the
    caller's rule (friends for people, anyone for a system account)."""
    key = _direct_key(first_id, second_id)
    existing = Conversation.objects.filter(direct_key=key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                kind=ConversationKind.DIRECT, direct_key=key, member_count=2
            )
            DeliveryCursor.objects.create(conversation=conversation)
            Membership.objects.bulk_create(
                [Membership(conversation=conversation, user_id=u) for u in (first_id, second_id)]
            )
            sequences_ensure([first_id, second_id])
    except IntegrityError:
        return Conversation.objects.get(direct_key=key)  # opened concurrently by the other
    return conversation


def direct_open(*, ticket: VerifiedTicket, user_id: int, peer_id: int) -> Conversation:
    """The 1:1 chat with a friend, created on first use."""
    ticket_require(ticket, user_id=user_id)
    _require_friends(ticket, user_id, [peer_id])
    return direct_conversation_ensure(user_id, peer_id)


def official_conversation_open(
    *, ticket: VerifiedTicket, user_id: int, service_user_id: int, name: str
) -> Conversation:
    """A new chat between a user and an official account's service identity. The
    caller (publicplatform) keeps which conversation belongs to which follower;
    its policy decides who may write in it.

    The identity is the conversation's owner and writes through
    `message_send_as_service`, but receives nothing: its membership ends before
    it starts (left_seq 0), so it gets no sync entries. Otherwise every message
    of every follower of an account would lock that one identity's sequence row,
    and a popular account would serialise all its chats (docs/performance.md).
    """
    ticket_require(ticket, user_id=user_id)
    conversation = Conversation.objects.create(
        kind=ConversationKind.OFFICIAL, name=name[:64], owner_id=service_user_id, member_count=1
    )
    DeliveryCursor.objects.create(conversation=conversation)
    Membership.objects.bulk_create(
        [
            Membership(
                conversation=conversation,
                user_id=service_user_id,
                role=MemberRole.OWNER,
                joined_seq=1,
                left_seq=0,
            ),
            Membership(conversation=conversation, user_id=user_id),
        ]
    )
    sequences_ensure([user_id, service_user_id])
    return conversation


@transaction.atomic
def group_create(
    *, ticket: VerifiedTicket, user_id: int, name: str, member_ids: list[int]
) -> Conversation:
    """A group of the creator (its owner) and some of their friends."""
    ticket_require(ticket, user_id=user_id)
    name = _clean_name(name)
    others = sorted(set(member_ids))
    if len(others) + 1 > settings.MESSAGING_GROUP_MAX_MEMBERS:
        raise GroupFull(f"A group has at most {settings.MESSAGING_GROUP_MAX_MEMBERS} members.")
    _require_friends(ticket, user_id, others)
    conversation = Conversation.objects.create(
        kind=ConversationKind.GROUP, name=name, owner_id=user_id, member_count=len(others) + 1
    )
    DeliveryCursor.objects.create(conversation=conversation)
    Membership.objects.bulk_create(
        [Membership(conversation=conversation, user_id=user_id, role=MemberRole.OWNER)]
        + [Membership(conversation=conversation, user_id=uid) for uid in others]
    )
    sequences_ensure([user_id, *others])
    conversation = conversation_lock(conversation.pk)
    event_append(
        conversation,
        sender_id=user_id,
        kind=MessageKind.SYSTEM,
        body={"event": "created", "name": name, "members": [user_id, *others]},
    )
    return conversation


def _group(conversation_id: int, user_id: int) -> tuple[Conversation, Membership]:
    """The group, locked, and the user's active membership. Membership is checked
    before anything else is said about the conversation: to anyone else it does
    not exist, whatever it is (no 'this is a 1:1 chat' for a stranger's chat)."""
    conversation = conversation_lock(conversation_id)
    membership = membership_require(conversation, user_id)
    if conversation.kind != ConversationKind.GROUP:
        raise InvalidInput("This is a 1:1 chat, not a group.")
    return conversation, membership


def _admin_require(membership: Membership) -> None:
    if membership.role not in (MemberRole.OWNER, MemberRole.ADMIN):
        raise NotAllowed()


@transaction.atomic
def group_invite(
    *, ticket: VerifiedTicket, user_id: int, conversation_id: int, member_ids: list[int]
) -> Message:
    """Add friends to a group (any member may invite, as in WeChat)."""
    ticket_require(ticket, user_id=user_id)
    conversation, _ = _group(conversation_id, user_id)
    invitees = sorted(set(member_ids))
    if not invitees:
        raise InvalidInput("Name at least one user to invite.")
    _require_friends(ticket, user_id, invitees)
    existing = {
        m.user_id: m
        for m in Membership.objects.filter(conversation=conversation, user_id__in=invitees)
    }
    if any(m.left_seq is None for m in existing.values()):
        raise AlreadyMember(
            details={"user_ids": sorted(u for u, m in existing.items() if m.active)}
        )
    if conversation.member_count + len(invitees) > settings.MESSAGING_GROUP_MAX_MEMBERS:
        raise GroupFull(f"A group has at most {settings.MESSAGING_GROUP_MAX_MEMBERS} members.")
    joined_seq = conversation.last_seq + 1
    sequences_ensure(invitees)
    for invitee in invitees:
        membership = existing.get(invitee) or Membership(conversation=conversation, user_id=invitee)
        membership.role, membership.joined_seq, membership.left_seq = (
            MemberRole.MEMBER,
            joined_seq,
            None,
        )
        membership.read_seq = conversation.last_seq
        membership.save()
    conversation.member_count += len(invitees)
    return event_append(
        conversation,
        sender_id=user_id,
        kind=MessageKind.SYSTEM,
        body={"event": "joined", "by": user_id, "users": invitees},
    )


def _depart(conversation: Conversation, membership: Membership, body: dict[str, object]) -> Message:
    """Record a member's leaving at the seq of the notice (which they still receive)."""
    membership.left_seq = conversation.last_seq + 1
    membership.role = MemberRole.MEMBER
    membership.save(update_fields=["left_seq", "role"])
    conversation.member_count -= 1
    return event_append(conversation, sender_id=None, kind=MessageKind.SYSTEM, body=body)


@transaction.atomic
def group_remove(
    *, ticket: VerifiedTicket, user_id: int, conversation_id: int, member_id: int
) -> Message:
    """The owner removes anyone; admins remove ordinary members."""
    ticket_require(ticket, user_id=user_id)
    conversation, actor = _group(conversation_id, user_id)
    _admin_require(actor)
    if member_id == user_id:
        raise InvalidInput("To leave a group, use leave.")
    target = membership_require(conversation, member_id)
    if actor.role == MemberRole.ADMIN and target.role != MemberRole.MEMBER:
        raise NotAllowed("Admins can remove ordinary members only.")
    return _depart(conversation, target, {"event": "removed", "by": user_id, "user": member_id})


@transaction.atomic
def group_leave(*, ticket: VerifiedTicket, user_id: int, conversation_id: int) -> Message:
    """Leave a group; an owner hands the group to the longest-serving admin, else member."""
    ticket_require(ticket, user_id=user_id)
    conversation, membership = _group(conversation_id, user_id)
    body: dict[str, object] = {"event": "left", "user": user_id}
    if membership.role == MemberRole.OWNER:
        heir = (
            Membership.objects.filter(conversation=conversation, left_seq__isnull=True)
            .exclude(user_id=user_id)
            .order_by(
                # admins first, then by seniority
                Case(When(role=MemberRole.ADMIN, then=0), default=1),
                "joined_seq",
                "id",
            )
            .first()
        )
        if heir is not None:
            heir.role = MemberRole.OWNER
            heir.save(update_fields=["role"])
            conversation.owner_id = heir.user_id
            conversation.save(update_fields=["owner"])
            body["new_owner"] = heir.user_id
    return _depart(conversation, membership, body)


@transaction.atomic
def group_update(
    *,
    ticket: VerifiedTicket,
    user_id: int,
    conversation_id: int,
    name: str | None = None,
    announcement: str | None = None,
) -> Conversation:
    """Rename the group or set its announcement (owner and admins)."""
    ticket_require(ticket, user_id=user_id)
    conversation, membership = _group(conversation_id, user_id)
    _admin_require(membership)
    if name is not None:
        conversation.name = _clean_name(name)
        conversation.save(update_fields=["name"])
        event_append(
            conversation,
            sender_id=user_id,
            kind=MessageKind.SYSTEM,
            body={"event": "renamed", "by": user_id, "name": conversation.name},
        )
    if announcement is not None:
        limit = settings.MESSAGING_ANNOUNCEMENT_MAX_CHARS
        if len(announcement) > limit:
            raise InvalidInput(f"An announcement has at most {limit} characters.")
        conversation.announcement = announcement
        conversation.save(update_fields=["announcement"])
        event_append(
            conversation,
            sender_id=user_id,
            kind=MessageKind.SYSTEM,
            body={"event": "announcement", "by": user_id, "text": announcement},
        )
    return conversation


@transaction.atomic
def group_set_admin(
    *, ticket: VerifiedTicket, user_id: int, conversation_id: int, member_id: int, admin: bool
) -> Message | None:
    """The owner makes a member an admin, or an admin a member again."""
    ticket_require(ticket, user_id=user_id)
    conversation, actor = _group(conversation_id, user_id)
    if actor.role != MemberRole.OWNER:
        raise NotAllowed("Only the owner appoints admins.")
    target = membership_require(conversation, member_id)
    if target.role == MemberRole.OWNER:
        raise InvalidInput("The owner is not an admin.")
    role = MemberRole.ADMIN if admin else MemberRole.MEMBER
    if target.role == role:
        return None
    target.role = role
    target.save(update_fields=["role"])
    event = "admin_added" if admin else "admin_removed"
    return event_append(
        conversation,
        sender_id=user_id,
        kind=MessageKind.SYSTEM,
        body={"event": event, "by": user_id, "user": member_id},
    )


@transaction.atomic
def conversation_settings_update(
    *,
    ticket: VerifiedTicket,
    user_id: int,
    conversation_id: int,
    muted: bool | None = None,
    pinned: bool | None = None,
) -> Membership:
    """Mute or pin a chat for oneself (any kind of chat one is in). The user's
    other devices learn it through a `conversation` entry in their log; nobody
    else does. Setting what is already set changes nothing and logs nothing."""
    ticket_require(ticket, user_id=user_id)
    membership = (
        Membership.objects.select_for_update(no_key=True)
        .filter(conversation_id=conversation_id, user_id=user_id, left_seq__isnull=True)
        .first()
    )
    if membership is None:
        raise ConversationNotFound()
    changed: list[str] = []
    if muted is not None and membership.muted != muted:
        membership.muted = muted
        changed.append("muted")
    if pinned is not None and (membership.pinned_at is not None) != pinned:
        membership.pinned_at = timezone.now() if pinned else None
        changed.append("pinned_at")
    if changed:
        membership.save(update_fields=changed)
        payload: ConversationSettingsPayload = {
            "conversation": conversation_id,
            "muted": membership.muted,
            "pinned": membership.pinned_at is not None,
        }
        entry_append(
            user_id=user_id,
            kind=EntryKind.CONVERSATION,
            conversation_id=conversation_id,
            payload=dict(payload),
        )
    return membership
