"""Input and output shapes of the shake API (docs/api.md). Amounts are fen."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from shake.models import DeliveryState, PrizeKind
from wechat_core.api.fields import IdField, StrictCharField

RESULTS = [("nothing", "nothing"), ("packet", "packet"), ("not_yet", "not_yet")]


class ShakeInput(serializers.Serializer[Any]):
    record = StrictCharField(
        required=False,
        allow_null=True,
        max_length=4096,
        help_text="The `record` of your previous shake answer in this round (what you have "
        "won, signed by the server); absent or null on your first shake.",
    )
    schedule = StrictCharField(
        required=False,
        allow_null=True,
        max_length=2048,
        help_text="The `schedule.token` of your previous shake answer, if any: it tells "
        "the server about live changes to the round (start, countdown, pause, end).",
    )


class SponsorOutput(serializers.Serializer[Any]):
    id = IdField()
    name = serializers.CharField()
    logo_url = serializers.CharField()
    background = serializers.CharField()


class PacketOutput(serializers.Serializer[Any]):
    id = IdField()
    round = IdField()
    amount = serializers.IntegerField(help_text="Fen.")
    kind = serializers.ChoiceField(choices=PrizeKind.choices)
    extra_shares = serializers.IntegerField(
        help_text="Sponsor packets: shares to pass on to friends once opened "
        "(POST /api/shake/shares)."
    )
    sponsor = SponsorOutput()
    signature = serializers.CharField(help_text="Send it back to open the packet.")


class ShakeScheduleOutput(serializers.Serializer[Any]):
    round = IdField()
    version = serializers.IntegerField(help_text="The round's control version.")
    starts_at = serializers.DateTimeField(
        help_text="When the round starts (or started): show a countdown until then."
    )
    ends_at = serializers.DateTimeField(help_text="When it ends (moves on while paused).")
    paused = serializers.BooleanField()
    ended = serializers.BooleanField(help_text="Ended early by the operators.")
    token = serializers.CharField(help_text="Send it as `schedule` with your next shake.")


class ShakeGroupOutput(serializers.Serializer[Any]):
    index = serializers.IntegerField(help_text="Your group, 0 to `count` - 1 (stable).")
    count = serializers.IntegerField(help_text="How many groups this round's users are in.")
    stagger = serializers.IntegerField(
        help_text="Seconds between consecutive groups' starts; 0: the round is not staggered."
    )
    starts_at = serializers.DateTimeField(
        help_text="When your group may start shaking: the round's start plus `index` * "
        "`stagger` (never after its end). Do not shake before it."
    )


class ShakeOutput(serializers.Serializer[Any]):
    round = IdField(allow_null=True, help_text="The round now issuing; null: none.")
    result = serializers.ChoiceField(choices=RESULTS)
    packet = PacketOutput(allow_null=True)
    record = serializers.CharField(
        allow_null=True, help_text="Send it with your next shake in this round."
    )
    capped = serializers.BooleanField(
        help_text="You have won all you may in this round: stop shaking until the next."
    )
    interval = serializers.IntegerField(help_text="Seconds to wait before the next shake.")
    tier = serializers.IntegerField(
        help_text="The throttle tier that set `interval`: 0 normal, 1 the server is busy "
        "(a longer interval)."
    )
    schedule = ShakeScheduleOutput(
        allow_null=True,
        help_text="The schedule of the round now issuing, or else of the next one; null: "
        "no round is near.",
    )
    group = ShakeGroupOutput(
        allow_null=True,
        help_text="Your staggered group in the `schedule`'s round; null with it. With "
        "`result` `not_yet` your group has not started: come back at `starts_at`.",
    )


class AssetsVersionOutput(serializers.Serializer[Any]):
    activity = IdField()
    version = serializers.IntegerField(
        help_text="The asset manifest's version: when it differs from the one you hold, "
        "fetch GET /api/shake/assets."
    )


class ShakeCountdownOutput(serializers.Serializer[Any]):
    round = IdField(allow_null=True, help_text="The round now issuing; null: none.")
    interval = serializers.IntegerField(help_text="Seconds between shakes, as a shake says.")
    tier = serializers.IntegerField(help_text="0 normal, 1 the server is busy.")
    schedule = ShakeScheduleOutput(
        allow_null=True,
        help_text="The round now issuing, or else the next one (its countdown); null: "
        "no round is near.",
    )
    group = ShakeGroupOutput(
        allow_null=True,
        help_text="Your staggered group in the `schedule`'s round: count down to its "
        "`starts_at`, not the round's; null with `schedule`.",
    )
    assets = AssetsVersionOutput(
        allow_null=True,
        help_text="The sponsor asset manifest of the `schedule`'s activity; null when it "
        "has none (or no round is near).",
    )


class AssetOutput(serializers.Serializer[Any]):
    url = serializers.CharField(help_text="Our origin's address of the asset (its hash in it).")
    sha256 = serializers.CharField(help_text="Hex SHA-256 of its bytes: check it.")
    bytes = serializers.IntegerField()
    content_type = serializers.CharField()
    sponsor = IdField()
    role = serializers.CharField(help_text="`logo` or `background` of the sponsor.")


class ManifestOutput(serializers.Serializer[Any]):
    activity = IdField(allow_null=True, help_text="null: no round is near.")
    version = serializers.IntegerField()
    report_seconds = serializers.IntegerField(
        help_text="Report what you hold (POST /api/shake/assets/held) this often while "
        "the shake page shows."
    )
    assets = AssetOutput(many=True)


SHA256_HEX = r"^[0-9a-f]{64}$"


class AssetsActivityInput(serializers.Serializer[Any]):
    # From the query string: digits, not a JSON integer (IdField refuses strings).
    activity = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class AssetsHeldInput(serializers.Serializer[Any]):
    activity = IdField()
    version = serializers.IntegerField(min_value=0, help_text="The manifest version you hold.")
    held = serializers.ListField(
        child=serializers.RegexField(SHA256_HEX),
        max_length=200,
        help_text="The hashes of the assets you hold, each verified (lower-case hex).",
    )


class AssetsHeldOutput(serializers.Serializer[Any]):
    complete = serializers.BooleanField(
        help_text="You hold every asset of the current manifest (of this version)."
    )
    missing = serializers.ListField(child=serializers.CharField())
    version = serializers.IntegerField(help_text="The current manifest's version.")


class OpenInput(serializers.Serializer[Any]):
    packet = IdField()
    round = IdField()
    amount = IdField()
    sponsor = IdField()
    signature = StrictCharField(min_length=64, max_length=64)


class SharesInput(serializers.Serializer[Any]):
    packet = IdField(help_text="The opened sponsor packet whose extra shares to pass on.")
    conversation = IdField(help_text="A chat you are in: a friend or a group.")
    greeting = StrictCharField(required=False, allow_blank=True, max_length=100)


class SharesOutput(serializers.Serializer[Any]):
    packet = IdField()
    redpacket = IdField(help_text="The chat red packet carrying the shares.")
    shares = serializers.IntegerField()
    amount = serializers.IntegerField(help_text="Fen, all the shares together.")
    duplicate = serializers.BooleanField(help_text="Sent before: the same red packet.")


class OpenOutput(serializers.Serializer[Any]):
    packet = IdField()
    amount = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=PrizeKind.choices)
    extra_shares = serializers.IntegerField()
    extra_amount = serializers.IntegerField(
        help_text="Fen of the extra shares together (pass them on with POST /api/shake/shares)."
    )
    credited = serializers.BooleanField(
        help_text="Whether the amount has reached your wallet yet (it follows shortly)."
    )
    delivery = serializers.ChoiceField(
        choices=DeliveryState.choices,
        allow_null=True,
        help_text="Coupons: the delivery's state (GET /api/shake/coupons/{packet}); null for cash.",
    )


class CouponOutput(serializers.Serializer[Any]):
    packet = IdField()
    business = serializers.CharField(help_text="The business that delivers the coupon.")
    coupon = serializers.CharField(help_text="The business's name for the coupon.")
    amount = serializers.IntegerField(help_text="Face value, fen (not paid into the wallet).")
    state = serializers.ChoiceField(choices=DeliveryState.choices)
    arrives_within_hours = serializers.IntegerField(
        allow_null=True, help_text='Until delivered: show "arrives within N h". Null once there.'
    )
    can_retry = serializers.BooleanField(
        help_text="Deferred or failed: POST /api/shake/coupons/{packet}/retry asks again."
    )
    attempts = serializers.IntegerField()
    delivered_at = serializers.DateTimeField(allow_null=True)
