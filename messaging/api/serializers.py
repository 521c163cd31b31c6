"""Shapes of the messaging HTTP API, for validation where DRF validates and for the
OpenAPI schema. Send, recall, read and receipt bodies and the long-poll's query are
parsed by messaging.protocol and messaging.api.longpoll, the same rules the
websocket follows; their serializers here only document them, limits included.
The output serializers describe the typed views of messaging.wire, field for field
(tests/messaging/test_wire_payloads.py compares the OpenAPI components with them)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from rest_framework import serializers

from accounts.publicprofile import PublicUserOutput
from messaging.models import AttachmentKind, ConversationKind, MemberRole, Membership
from messaging.services.sending import CLIENT_MSG_ID
from wechat_core.api.fields import MAX_ID, IdField, StrictCharField

# --- Inputs ----------------------------------------------------------------------


class ContentInput(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=["text", "image", "file"], default="text")
    text = StrictCharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=settings.MESSAGING_TEXT_MAX_CHARS,
        help_text="The text (required, not blank, for text), or a caption.",
    )
    attachment = serializers.UUIDField(
        required=False, help_text="From POST /api/messaging/uploads; required for image and file."
    )
    mentions = serializers.ListField(
        child=IdField(),
        required=False,
        max_length=settings.MESSAGING_MENTIONS_MAX,
        help_text="Members mentioned.",
    )
    mention_all = serializers.BooleanField(
        required=False, help_text="@all: the group's owner and admins only."
    )
    reply_to = IdField(required=False, help_text="Quote a message of the same conversation.")


class SendInput(serializers.Serializer[Any]):
    conversation = IdField()
    client_msg_id = StrictCharField(
        max_length=64,
        validators=[RegexValidator(CLIENT_MSG_ID)],
        help_text="Your idempotency key: retries with it return the first ack. Unique per "
        "sender: the same id sent to another conversation is refused (client_msg_id_reused).",
    )
    content = ContentInput()


class RecallInput(serializers.Serializer[Any]):
    message = IdField()


class ReadInput(serializers.Serializer[Any]):
    conversation = IdField()
    seq = serializers.IntegerField(
        min_value=0, max_value=MAX_ID, help_text="The conversation seq read up to."
    )


class ShownInput(serializers.Serializer[Any]):
    id = IdField(help_text="A message from someone else, in one of your conversations.")
    shown_ago_ms = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=MAX_ID,
        help_text="Milliseconds since the message was displayed (0: just now).",
    )


class ReceiptInput(serializers.Serializer[Any]):
    messages = ShownInput(many=True)

    openapi_limits = {"messages": {"maxItems": settings.MONITORING_RECEIPT_MAX_MESSAGES}}


class ReceiptOutput(serializers.Serializer[Any]):
    counted = serializers.IntegerField()


class LinkReportInput(serializers.Serializer[Any]):
    transport = serializers.ChoiceField(choices=["websocket", "longpoll"])
    ok = serializers.BooleanField(
        allow_null=True,
        help_text="Whether the attempt connected; null for a report of round trips only.",
    )
    connect_ms = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=MAX_ID,
        help_text="Milliseconds from the attempt's start to the hello (or first long-poll answer).",
    )
    rtt_ms = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_ID),
        required=False,
        default=list,
        max_length=20,
        help_text="Round trips measured on this link (heartbeat to its ack), milliseconds.",
    )


class LinkStatsInput(serializers.Serializer[Any]):
    reports = LinkReportInput(many=True)

    openapi_limits = {"reports": {"maxItems": settings.MONITORING_LINK_REPORT_MAX_ENTRIES}}


class LinkStatsOutput(serializers.Serializer[Any]):
    counted = serializers.IntegerField()


class DirectInput(serializers.Serializer[Any]):
    user_id = IdField()


class GroupCreateInput(serializers.Serializer[Any]):
    name = StrictCharField(max_length=settings.MESSAGING_GROUP_NAME_MAX_CHARS)
    members = serializers.ListField(
        child=IdField(),
        max_length=1000,
        help_text="Friends to add besides you; a group holds at most "
        f"{settings.MESSAGING_GROUP_MAX_MEMBERS} members (else group_full).",
    )


class GroupUpdateInput(serializers.Serializer[Any]):
    name = StrictCharField(required=False, max_length=settings.MESSAGING_GROUP_NAME_MAX_CHARS)
    announcement = StrictCharField(
        required=False, allow_blank=True, max_length=settings.MESSAGING_ANNOUNCEMENT_MAX_CHARS
    )


class HideInput(serializers.Serializer[Any]):
    message = IdField(help_text="A message of a chat you are in: hidden for you only.")


class HideOutput(serializers.Serializer[Any]):
    message = serializers.IntegerField()
    conversation = serializers.IntegerField()
    hidden = serializers.BooleanField()


class ConversationSettingsInput(serializers.Serializer[Any]):
    muted = serializers.BooleanField(
        required=False, help_text="No notifications for this chat, on any of your devices."
    )
    pinned = serializers.BooleanField(
        required=False, help_text="Keep this chat at the top of your list."
    )


class ConversationSettingsOutput(serializers.Serializer[Any]):
    conversation = serializers.IntegerField()
    muted = serializers.BooleanField()
    pinned = serializers.BooleanField()


class InviteInput(serializers.Serializer[Any]):
    user_ids = serializers.ListField(
        child=IdField(),
        min_length=1,
        max_length=1000,
        help_text="Friends to add; a group holds at most "
        f"{settings.MESSAGING_GROUP_MAX_MEMBERS} members (else group_full).",
    )


class UploadInput(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=AttachmentKind.choices)
    file = serializers.FileField(
        allow_empty_file=False,
        help_text=f"An image (JPEG, PNG, GIF, WebP; at most {settings.MESSAGING_IMAGE_MAX_BYTES} "
        f"bytes and {settings.MESSAGING_IMAGE_MAX_PIXELS} pixels), or a file of an accepted "
        f"type (at most {settings.MESSAGING_FILE_MAX_BYTES} bytes): "
        f"{', '.join(sorted(settings.MESSAGING_FILE_TYPES))}.",
    )


class HistoryInput(serializers.Serializer[Any]):
    before = serializers.IntegerField(
        required=False, min_value=1, help_text="Messages with a lower seq."
    )
    after = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="Messages with a higher seq: the oldest `limit` of them (newer history "
        "after a jump to a found message). With `before`, the messages between.",
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        default=50,
        help_text=f"At most this many (a larger value is lowered to {settings.API_MAX_PAGE_SIZE}).",
    )


class SyncQuery(serializers.Serializer[Any]):
    key = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=MAX_ID,
        help_text="The key of your last sync (0: from the start).",
    )
    limit = serializers.IntegerField(
        required=False,
        default=settings.MESSAGING_SYNC_DEFAULT_LIMIT,
        min_value=1,
        max_value=settings.MESSAGING_SYNC_MAX_LIMIT,
        help_text="At most this many entries.",
    )
    timeout = serializers.IntegerField(
        required=False,
        default=25,
        min_value=0,
        max_value=settings.MESSAGING_LONGPOLL_MAX_SECONDS,
        help_text="Seconds to wait for a new entry when none is there (0: answer at once).",
    )


# --- Outputs ---------------------------------------------------------------------


class AckOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField(help_text="The message id.")
    conversation = serializers.IntegerField()
    seq = serializers.IntegerField(help_text="The message's place in the conversation.")
    client_msg_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    duplicate = serializers.BooleanField(help_text="True when this retried an earlier send.")


class MessageOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    conversation = serializers.IntegerField()
    seq = serializers.IntegerField(help_text="The message's place in the conversation.")
    sender = serializers.IntegerField(
        allow_null=True, help_text="null for notices the system writes."
    )
    kind = serializers.CharField(
        help_text="text, image, file, recall, system, or a kind another feature adds "
        "(redpacket); docs/protocol.md lists them all."
    )
    body = serializers.DictField(
        help_text="By kind (docs/protocol.md): text: `text`, optional `mentions`, "
        "`mention_all`, `reply_to`; image and file: `attachment`, `name`, `size`, "
        "`content_type`, optional `text`, `reply_to`; recall: `message_id`; system: `event` "
        "and its fields; redpacket: `packet_id`, `kind`, `greeting`, `cover`, `shares`. "
        "Empty once recalled."
    )
    recalled = serializers.BooleanField()
    created_at = serializers.DateTimeField(help_text="UTC, with microseconds.")
    client_msg_id = serializers.CharField(
        allow_null=True,
        help_text="The sender's own id for the message, shown to the sender only (null for "
        "everyone else).",
    )


class ReadOutput(serializers.Serializer[Any]):
    conversation = serializers.IntegerField()
    read_seq = serializers.IntegerField()


class ConversationOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ConversationKind.choices)
    name = serializers.CharField(help_text="Empty for 1:1 chats.")
    peer = serializers.IntegerField(allow_null=True, help_text="The other user of a 1:1 chat.")
    member_count = serializers.IntegerField()
    last_seq = serializers.IntegerField()


class ConversationSummaryOutput(serializers.Serializer[Any]):
    conversation = ConversationOutput()
    role = serializers.ChoiceField(choices=MemberRole.choices)
    read_seq = serializers.IntegerField()
    unread = serializers.IntegerField(help_text="Messages from others after read_seq.")
    last_message = MessageOutput(allow_null=True)
    muted = serializers.BooleanField(help_text="You muted this chat (on any device).")
    pinned = serializers.BooleanField(help_text="You pinned this chat: it heads the list.")


class MemberOutput(serializers.ModelSerializer[Membership]):
    user = PublicUserOutput()

    class Meta:
        model = Membership
        fields = ["user", "role", "joined_seq"]


class ConversationDetailOutput(serializers.Serializer[Any]):
    conversation = ConversationOutput()
    announcement = serializers.CharField()
    owner = serializers.IntegerField(allow_null=True)
    role = serializers.ChoiceField(choices=MemberRole.choices)
    read_seq = serializers.IntegerField()
    muted = serializers.BooleanField()
    pinned = serializers.BooleanField()
    members = MemberOutput(many=True)


class HistoryOutput(serializers.Serializer[Any]):
    messages = MessageOutput(many=True)


class MessageSearchInput(serializers.Serializer[Any]):
    q = StrictCharField(
        max_length=settings.MESSAGING_SEARCH_QUERY_MAX_CHARS,
        help_text="Text to find (any case). Chinese, Japanese and Korean from one "
        "character; on PostgreSQL a Latin query of one or two letters finds whole words.",
    )
    conversation = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="Search this conversation only."
    )
    before = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="Messages with a lower id (the last answer's `next_before`).",
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        default=20,
        help_text="At most this many (a larger value is lowered to "
        f"{settings.MESSAGING_SEARCH_MAX_RESULTS}).",
    )


class MessageSearchHitOutput(serializers.Serializer[Any]):
    message = MessageOutput()
    snippet = serializers.CharField(
        help_text="The text around the match (`…` where it was cut), or the file name."
    )
    match = serializers.ListField(
        child=serializers.IntegerField(),
        min_length=2,
        max_length=2,
        help_text="[start, end) of the match in `snippet`, in characters (Unicode code points).",
    )


class MessageSearchOutput(serializers.Serializer[Any]):
    results = MessageSearchHitOutput(many=True, help_text="Newest first.")
    conversations = serializers.DictField(
        child=ConversationOutput(), help_text="Each conversation a result is in, by id."
    )
    next_before = serializers.IntegerField(
        allow_null=True, help_text="Pass as `before` for the next page; null when none."
    )


class AttachmentOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=AttachmentKind.choices)
    name = serializers.CharField()
    size = serializers.IntegerField(help_text="Bytes.")
    content_type = serializers.CharField(
        help_text="What GET /api/messaging/attachments/{id} answers with."
    )


class SyncMessageOutput(MessageOutput):
    adapted_from = serializers.CharField(
        required=False,
        help_text="Only for clients too old for groups (the kind of the group event this text "
        "describes) or for a message kind (e.g. `redpacket`).",
    )


class SyncConversationOutput(ConversationOutput):
    adapted_from = serializers.CharField(
        required=False, help_text="Only for clients too old for groups: `group`."
    )


class SyncEntryOutput(serializers.Serializer[Any]):
    seq = serializers.IntegerField(help_text="Your sequence: apply entries above your key.")
    kind = serializers.ChoiceField(
        choices=[
            "message",
            "read",
            "conversation",
            "contact",
            "flag",
            "message_update",
            "shake_assets",
        ]
    )
    conversation = serializers.IntegerField(allow_null=True)
    message = SyncMessageOutput(allow_null=True, help_text="For `message` entries.")
    payload = serializers.DictField(
        allow_null=True,
        help_text="read: `conversation`, `read_seq`; contact: `event`, `user`, `request`; "
        "conversation: `conversation`, `muted`, `pinned`; "
        "flag: `feature`, `revision`, `devices`; message_update: `message` and the owning "
        "feature's object, e.g. `redpacket`, or `hidden`; shake_assets: `activity`, "
        "`version` (docs/protocol.md).",
    )


class SyncOutput(serializers.Serializer[Any]):
    entries = SyncEntryOutput(many=True)
    key = serializers.IntegerField(help_text="Sync from here next.")
    more = serializers.BooleanField(help_text="Another page waits: sync again at once.")
    conversations = serializers.DictField(
        child=SyncConversationOutput(),
        help_text="Every conversation the entries mention, by id.",
    )
