"""Input and output shapes of the red-packet API. Amounts are integers in fen
(1 CNY = 100 fen); the limits are the service's (settings, docs/redpackets.md)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from redpackets.models import CreditState, PacketKind
from wechat_core.api.fields import IdField, StrictCharField

STATES = [("open", "open"), ("finished", "finished"), ("expired", "expired")]
OUTCOMES = [(o, o) for o in ("grabbed", "already", "finished", "expired")]


class RedPacketSendInput(serializers.Serializer[Any]):
    conversation = IdField(help_text="A 1:1 chat or a group you are in.")
    client_id = StrictCharField(
        min_length=1,
        max_length=64,
        help_text="Your idempotency key (letters, digits, . _ : -): a retry returns the "
        "first packet.",
    )
    kind = serializers.ChoiceField(choices=PacketKind.choices)
    total_amount = IdField(help_text="Fen: at most REDPACKETS_MAX_TOTAL_FEN (20000).")
    shares = IdField(
        help_text="1 in a 1:1 chat; in a group at most REDPACKETS_MAX_SHARES (100) and the "
        "group's member count. Each share gets at least 1 fen; an equal packet's total is a "
        "multiple of its shares."
    )
    greeting = StrictCharField(required=False, allow_blank=True, max_length=100)
    cover = StrictCharField(
        required=False,
        allow_null=True,
        max_length=32,
        help_text="A cover id from GET /api/redpackets/covers; unknown or unreadable: the "
        "default cover (cover_fallback true), and the packet still goes out.",
    )
    surname = StrictCharField(
        required=False, allow_null=True, max_length=8, help_text="For the `surname` cover."
    )


class RedPacketCoverOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    title = serializers.CharField()
    surname = serializers.CharField(allow_null=True)


class RedPacketSentOutput(serializers.Serializer[Any]):
    packet = serializers.IntegerField()
    message = serializers.IntegerField(help_text="The `redpacket` message carrying it.")
    conversation = serializers.IntegerField()
    client_id = serializers.CharField()
    kind = serializers.ChoiceField(choices=PacketKind.choices)
    total_amount = serializers.IntegerField()
    shares = serializers.IntegerField()
    greeting = serializers.CharField(allow_blank=True)
    cover = RedPacketCoverOutput()
    cover_fallback = serializers.BooleanField(
        help_text="True when the asked-for cover could not be used (the default one was)."
    )
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(help_text="Unopened shares are refunded then.")
    duplicate = serializers.BooleanField(help_text="True when this retried an earlier send.")


class RedPacketGrabOutput(serializers.Serializer[Any]):
    outcome = serializers.ChoiceField(
        choices=OUTCOMES,
        help_text="grabbed: a share is yours now; already: you opened it before (your share "
        "is shown); finished: all shares were taken; expired.",
    )
    packet = serializers.IntegerField()
    state = serializers.ChoiceField(choices=STATES)
    amount = serializers.IntegerField(allow_null=True, help_text="Your share (fen), if any.")
    credit = serializers.ChoiceField(
        choices=CreditState.choices,
        allow_null=True,
        help_text="arriving: on its way to your wallet; credited: in it.",
    )
    opened_at = serializers.DateTimeField(allow_null=True)


class RedPacketGrabLineOutput(serializers.Serializer[Any]):
    user = serializers.IntegerField()
    nickname = serializers.CharField(allow_blank=True)
    amount = serializers.IntegerField()
    opened_at = serializers.DateTimeField()
    credit = serializers.ChoiceField(choices=CreditState.choices)


class RedPacketDetailOutput(serializers.Serializer[Any]):
    packet = serializers.IntegerField()
    message = serializers.IntegerField()
    conversation = serializers.IntegerField()
    sender = serializers.IntegerField()
    sender_nickname = serializers.CharField(allow_blank=True)
    kind = serializers.ChoiceField(choices=PacketKind.choices)
    total_amount = serializers.IntegerField()
    shares = serializers.IntegerField()
    opened_count = serializers.IntegerField()
    opened_amount = serializers.IntegerField(help_text="Fen taken by the grabs so far.")
    refunded_amount = serializers.IntegerField(help_text="Fen sent back to the sender.")
    greeting = serializers.CharField(allow_blank=True)
    cover = RedPacketCoverOutput()
    state = serializers.ChoiceField(choices=STATES)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    grabs = RedPacketGrabLineOutput(many=True, help_text="Who got how much and when, in order.")
    luckiest = serializers.IntegerField(
        allow_null=True, help_text="The user with the largest share of a finished lucky packet."
    )
    my_amount = serializers.IntegerField(allow_null=True)
    my_credit = serializers.ChoiceField(choices=CreditState.choices, allow_null=True)


class RedPacketCoverListOutput(serializers.Serializer[Any]):
    id = serializers.CharField()
    title = serializers.CharField()
