"""Conversations, their events, and each user's sync log (DESIGN.md §4).

- A `Conversation` (1:1 or group) numbers its events with its own sequence
  (`Message.seq`), assigned under the conversation's row lock: one order that
  every member sees.
- Every event in a conversation (text, image, file, recall, system notice) is a
  `Message`, stored once (write diffusion: recipients get small entries).
- Each user's sync log (`UserSequence`, `SyncEntry`) lives below every app, in
  wechat_core.sync: messaging writes its events into it, as other apps do.
- `DeliveryCursor` records how far a conversation's events have been written
  into its members' logs; whoever holds its lock delivers the rest in order.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ConversationKind(models.TextChoices):
    DIRECT = "direct", "1:1 chat"
    GROUP = "group", "Group chat"
    # A follower and an official account's service identity (publicplatform): following,
    # not friendship, allows it; the app's policy (services.policies) checks each send.
    OFFICIAL = "official", "Official account chat"


def direct_peer(direct_key: str | None, user_id: int) -> int:
    """The other one of a 1:1 chat's key ("low:high", suffixed "@<origin>" on the
    later copy of a chat opened in two data centres at once: messaging.replication)."""
    low, high = (int(part) for part in (direct_key or "0:0").partition("@")[0].split(":"))
    return high if low == user_id else low


class Conversation(models.Model):
    kind = models.CharField(max_length=8, choices=ConversationKind.choices)
    # For 1:1 chats, "<smaller user id>:<larger user id>"; makes the pair unique.
    direct_key = models.CharField(max_length=41, unique=True, null=True, blank=True)
    name = models.CharField(max_length=64, blank=True, default="")
    announcement = models.TextField(blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_seq = models.BigIntegerField(default=0)
    member_count = models.PositiveIntegerField(default=0)
    # Not auto_now_add, which would overwrite a replica's origin time on insert.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # With several data centres: whether a member is homed in another one (its
    # events are replicated). Worked out with each system event (membership changes
    # come with one); None until then (messaging.replication).
    has_remote_members = models.BooleanField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["group", "official"], direct_key__isnull=True)
                | Q(kind="direct", direct_key__isnull=False),
                name="conversation_direct_key_iff_direct",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} {self.name}".strip()


class DeliveryCursor(models.Model):
    """Events of the conversation up to `delivered_seq` are in every recipient's log."""

    conversation = models.OneToOneField(
        Conversation, primary_key=True, on_delete=models.CASCADE, related_name="cursor"
    )
    delivered_seq = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"cursor {self.conversation_id}@{self.delivered_seq}"


class MemberRole(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class Membership(models.Model):
    """A user in a conversation. Members receive the events numbered from
    `joined_seq` through `left_seq` (the notice of their leaving included). An
    official account's identity has left_seq 0: it writes, and receives nothing."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=8, choices=MemberRole.choices, default=MemberRole.MEMBER)
    joined_seq = models.BigIntegerField(default=1)
    left_seq = models.BigIntegerField(null=True, blank=True)
    read_seq = models.BigIntegerField(default=0)
    # The member's own settings of the chat, the same on all their devices
    # (services.conversations.conversation_settings_update): no notifications
    # when muted; pinned chats head the list, the most recently pinned first.
    muted = models.BooleanField(default=False)
    pinned_at = models.DateTimeField(null=True, blank=True)
    joined_at = models.DateTimeField(default=timezone.now, editable=False)  # origin's on replicas

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="membership_unique"),
        ]
        indexes = [models.Index(fields=["user", "left_seq"], name="membership_by_user")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.conversation_id} ({self.role})"

    @property
    def active(self) -> bool:
        return self.left_seq is None


class MessageKind(models.TextChoices):
    TEXT = "text", "Text"
    IMAGE = "image", "Image"
    FILE = "file", "File"
    RECALL = "recall", "Recall notice"
    SYSTEM = "system", "System notice"


class Message(models.Model):
    """One event of a conversation; `seq` is its place in the conversation's order.

    `body` by kind: text {"text", "mentions"?, "mention_all"?, "reply_to"?};
    image/file {"attachment", "name", "size", "content_type", "text"?, "reply_to"?};
    recall {"message_id"}; system {"event", ...event fields}; registered kinds
    (services.kinds) the body their app built, e.g. redpacket {"packet_id", ...}.
    """

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    seq = models.BigIntegerField()
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # One of MessageKind, or a kind another app registered (services.kinds).
    kind = models.CharField(max_length=16)
    # The sender's idempotency key: a retry with the same key returns this message.
    client_msg_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    body = models.JSONField(default=dict)
    recalled_at = models.DateTimeField(null=True, blank=True)
    # Set explicitly by replication (the origin's time): auto_now_add would not let it.
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_seq_unique"),
            models.UniqueConstraint(
                fields=["sender", "client_msg_id"],
                condition=Q(client_msg_id__isnull=False),
                name="message_client_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.conversation_id}#{self.seq}"


class HiddenMessage(models.Model):
    """A message one member deleted for themselves ("delete for me"): their history
    and devices no longer show it; the other members keep it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "message"], name="hidden_message_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} hidden for {self.user_id}"


class AttachmentKind(models.TextChoices):
    IMAGE = "image", "Image"
    FILE = "file", "File"


def attachment_path(instance: Attachment, filename: str) -> str:
    return f"attachments/{instance.owner_id}/{instance.pk.hex}"


class Attachment(models.Model):
    """An uploaded image or file; readable by its owner and, once sent, by the
    members of the conversation it was sent to."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=AttachmentKind.choices)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    file = models.FileField(upload_to=attachment_path)
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"
