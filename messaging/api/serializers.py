"""Shapes of the messaging HTTP API, for validation where DRF validates and for the
OpenAPI schema. Send, recall and read bodies are parsed by messaging.protocol, the
same parser the websocket uses; their serializers here document them."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from accounts.api.serializers import PublicUserOutput
from messaging.models import AttachmentKind, Membership
from wechat_core.api.fields import IdField, StrictCharField

# --- Inputs ----------------------------------------------------------------------


class ContentInput(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=["text", "image", "file"], default="text")
    text = StrictCharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=settings.MESSAGING_TEXT_MAX_CHARS,
    )
    attachment = serializers.UUIDField(required=False)
    mentions = serializers.ListField(child=IdField(), required=False)
    mention_all = serializers.BooleanField(required=False)
    reply_to = IdField(required=False)


class SendInput(serializers.Serializer[Any]):
    conversation = IdField()
    client_msg_id = StrictCharField(
        max_length=64, help_text="Your idempotency key: retries with it return the first ack."
    )
    content = ContentInput()


class RecallInput(serializers.Serializer[Any]):
    message = IdField()


class ReadInput(serializers.Serializer[Any]):
    conversation = IdField()
    seq = serializers.IntegerField(min_value=0, help_text="The conversation seq read up to.")


class ShownInput(serializers.Serializer[Any]):
    id = IdField()
    shown_ago_ms = serializers.IntegerField(
        min_value=0, help_text="Milliseconds since the message was displayed."
    )


class ReceiptInput(serializers.Serializer[Any]):
    messages = ShownInput(many=True)


class ReceiptOutput(serializers.Serializer[Any]):
    counted = serializers.IntegerField()


class DirectInput(serializers.Serializer[Any]):
    user_id = IdField()


class GroupCreateInput(serializers.Serializer[Any]):
    name = StrictCharField(max_length=settings.MESSAGING_GROUP_NAME_MAX_CHARS)
    members = serializers.ListField(child=IdField(), max_length=1000)


class GroupUpdateInput(serializers.Serializer[Any]):
    name = StrictCharField(required=False, max_length=settings.MESSAGING_GROUP_NAME_MAX_CHARS)
    announcement = StrictCharField(
        required=False, allow_blank=True, max_length=settings.MESSAGING_ANNOUNCEMENT_MAX_CHARS
    )


class InviteInput(serializers.Serializer[Any]):
    user_ids = serializers.ListField(child=IdField(), min_length=1, max_length=1000)


class UploadInput(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=AttachmentKind.choices)
    file = serializers.FileField(allow_empty_file=False)


class HistoryInput(serializers.Serializer[Any]):
    before = serializers.IntegerField(required=False, min_value=1)
    limit = serializers.IntegerField(required=False, min_value=1, default=50)


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
    seq = serializers.IntegerField()
    sender = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField()
    body = serializers.DictField()
    recalled = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class ReadOutput(serializers.Serializer[Any]):
    conversation = serializers.IntegerField()
    read_seq = serializers.IntegerField()


class ConversationOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    name = serializers.CharField()
    peer = serializers.IntegerField(allow_null=True, help_text="The other user of a 1:1 chat.")
    member_count = serializers.IntegerField()
    last_seq = serializers.IntegerField()


class ConversationSummaryOutput(serializers.Serializer[Any]):
    conversation = ConversationOutput()
    role = serializers.CharField()
    read_seq = serializers.IntegerField()
    unread = serializers.IntegerField(help_text="Messages from others after read_seq.")
    last_message = MessageOutput(allow_null=True)


class MemberOutput(serializers.ModelSerializer[Membership]):
    user = PublicUserOutput()

    class Meta:
        model = Membership
        fields = ["user", "role", "joined_seq"]


class ConversationDetailOutput(serializers.Serializer[Any]):
    conversation = ConversationOutput()
    announcement = serializers.CharField()
    owner = serializers.IntegerField(allow_null=True)
    role = serializers.CharField()
    read_seq = serializers.IntegerField()
    members = MemberOutput(many=True)


class HistoryOutput(serializers.Serializer[Any]):
    messages = MessageOutput(many=True)


class AttachmentOutput(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    name = serializers.CharField()
    size = serializers.IntegerField()
    content_type = serializers.CharField()


class SyncOutput(serializers.Serializer[Any]):
    entries = serializers.ListField(child=serializers.DictField())
    key = serializers.IntegerField()
    more = serializers.BooleanField()
    conversations = serializers.DictField(child=serializers.DictField())
