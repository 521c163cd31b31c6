"""Input and output shapes of the accounts and contacts API.

Inputs check types and sizes; the rules themselves (normalisation, uniqueness,
limits from settings) live in the services, which raise clear errors.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from accounts.models import Device, FriendRequest, Friendship, Platform, User
from accounts.types import DeviceInfo, VerifiedTicket
from accounts.validators import validate_client_version
from grayrelease.api.serializers import FlagOutput
from wechat_core.api.fields import IdField, StrictBooleanField, StrictCharField

# Upper bounds on raw input, generous against the settings-driven limits that the
# services apply; anything longer is refused before the services see it.
TEXT_INPUT_MAX = 512


# --- Inputs ----------------------------------------------------------------------


class DeviceInput(serializers.Serializer[DeviceInfo]):
    platform = serializers.ChoiceField(choices=Platform.choices)
    client_version = StrictCharField(max_length=32, validators=[validate_client_version])
    name = StrictCharField(max_length=64)
    device_uuid = serializers.UUIDField(required=False)

    @staticmethod
    def info(data: dict[str, Any]) -> DeviceInfo:
        """The DeviceInfo of validated device data."""
        return DeviceInfo(
            platform=data["platform"],
            client_version=data["client_version"],
            name=data["name"],
            device_uuid=data.get("device_uuid"),
        )


class RegisterInput(serializers.Serializer[Any]):
    phone = StrictCharField(required=False, max_length=32)
    email = StrictCharField(required=False, max_length=254)
    password = StrictCharField(trim_whitespace=False, max_length=settings.PASSWORD_MAX_LENGTH)
    nickname = StrictCharField(max_length=TEXT_INPUT_MAX)
    device = DeviceInput()


class LoginInput(serializers.Serializer[Any]):
    identifier = StrictCharField(max_length=254, help_text="Phone number or e-mail address.")
    password = StrictCharField(trim_whitespace=False, max_length=settings.PASSWORD_MAX_LENGTH)
    device = DeviceInput()


class ProfileUpdateInput(serializers.Serializer[Any]):
    nickname = StrictCharField(required=False, max_length=TEXT_INPUT_MAX)
    region = StrictCharField(required=False, allow_blank=True, max_length=TEXT_INPUT_MAX)
    signature = StrictCharField(required=False, allow_blank=True, max_length=TEXT_INPUT_MAX)
    discoverable_by_phone = StrictBooleanField(required=False)
    discoverable_by_wechat_id = StrictBooleanField(required=False)


class AvatarInput(serializers.Serializer[Any]):
    avatar = serializers.FileField(allow_empty_file=False)


class WeChatIdInput(serializers.Serializer[Any]):
    wechat_id = StrictCharField(max_length=20, trim_whitespace=False)


class SearchInput(serializers.Serializer[Any]):
    q = StrictCharField(max_length=64, help_text="A WeChat ID or a phone number.")


class FriendRequestCreateInput(serializers.Serializer[Any]):
    to_user_id = IdField()
    greeting = StrictCharField(required=False, allow_blank=True, max_length=TEXT_INPUT_MAX)


class FriendRequestListInput(serializers.Serializer[Any]):
    direction = serializers.ChoiceField(choices=["incoming", "outgoing"], default="incoming")


class AcceptInput(serializers.Serializer[Any]):
    remark = StrictCharField(required=False, allow_blank=True, max_length=TEXT_INPUT_MAX)


class RemarkInput(serializers.Serializer[Any]):
    remark = StrictCharField(allow_blank=True, max_length=TEXT_INPUT_MAX)


# --- Outputs ---------------------------------------------------------------------


class PublicUserOutput(serializers.ModelSerializer[User]):
    """What other users may see of someone."""

    avatar_url = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "wechat_id", "nickname", "avatar_url", "region", "signature"]

    def get_avatar_url(self, user: User) -> str | None:
        return user.avatar.url if user.avatar else None


class MeOutput(PublicUserOutput):
    """The user's own profile, with login identifiers and home placement."""

    class Meta(PublicUserOutput.Meta):
        fields = [
            *PublicUserOutput.Meta.fields,
            "phone",
            "email",
            "discoverable_by_phone",
            "discoverable_by_wechat_id",
            "home_datacenter",
            "home_campus",
            "date_joined",
        ]


class DeviceOutput(serializers.ModelSerializer[Device]):
    active = serializers.SerializerMethodField(help_text="Holds a live ticket.")
    current = serializers.SerializerMethodField(help_text="The device making this request.")

    class Meta:
        model = Device
        fields = [
            "id",
            "device_uuid",
            "platform",
            "client_version",
            "name",
            "created_at",
            "last_login_at",
            "last_seen_at",
            "active",
            "current",
        ]

    def get_active(self, device: Device) -> bool:
        return bool(getattr(device, "has_live_ticket", True))

    def get_current(self, device: Device) -> bool:
        ticket = self.context.get("ticket")
        return isinstance(ticket, VerifiedTicket) and ticket.device_id == device.pk


class SessionOutput(serializers.Serializer[Any]):
    ticket = serializers.CharField(help_text="Send as `Authorization: Ticket <ticket>`.")
    expires_at = serializers.DateTimeField()
    user = MeOutput()
    device = DeviceOutput()
    flags = serializers.DictField(
        child=FlagOutput(),
        help_text="The client-visible features as this device sees them (gray release).",
    )


class FriendOutput(serializers.ModelSerializer[Friendship]):
    user = PublicUserOutput(source="friend")

    class Meta:
        model = Friendship
        fields = ["user", "remark", "created_at"]


class FriendRequestOutput(serializers.ModelSerializer[FriendRequest]):
    from_user = PublicUserOutput()
    to_user = PublicUserOutput()
    status = serializers.SerializerMethodField()

    class Meta:
        model = FriendRequest
        fields = [
            "id",
            "from_user",
            "to_user",
            "greeting",
            "status",
            "created_at",
            "expires_at",
            "responded_at",
        ]

    def get_status(self, request: FriendRequest) -> str:
        return str(getattr(request, "effective_status", request.status))


class FriendRequestSendOutput(serializers.Serializer[Any]):
    outcome = serializers.ChoiceField(
        choices=["pending", "friends"],
        help_text="'friends' when you became friends at once (they had asked you too).",
    )
    request = FriendRequestOutput(allow_null=True)
    friend = FriendOutput(allow_null=True)


class BlockOutput(serializers.Serializer[Any]):
    user = PublicUserOutput(source="blocked")
    created_at = serializers.DateTimeField()


class LogoutAllOutput(serializers.Serializer[Any]):
    revoked = serializers.IntegerField(help_text="How many live tickets were revoked.")


class SearchOutput(serializers.Serializer[Any]):
    results = PublicUserOutput(many=True)
