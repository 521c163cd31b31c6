"""Input and output shapes of the accounts and contacts API.

Inputs check types and sizes; the rules themselves (normalisation, uniqueness,
limits from settings) live in the services, which raise clear errors. The
schema states those limits too (`openapi_limits`, wechat_core.api.schema).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from rest_framework import serializers

from accounts.models import Device, FriendRequest, Friendship, Platform, User
from accounts.publicprofile import PublicUserOutput
from accounts.types import DeviceInfo, VerifiedTicket
from accounts.validators import (
    CLIENT_VERSION_PATTERN,
    WECHAT_ID_PATTERN,
    validate_client_version,
)
from wechat_core.api.fields import FlagOutput, IdField, StrictBooleanField, StrictCharField

# Upper bounds on raw input, generous against the settings-driven limits that the
# services apply; anything longer is refused before the services see it.
TEXT_INPUT_MAX = 512


def _password_min_length() -> int:
    """The shortest password AUTH_PASSWORD_VALIDATORS accept (for the schema)."""
    lengths = [
        int(getattr(validator, "min_length", 0))
        for validator in password_validation.get_default_password_validators()
    ]
    return max([1, *lengths])


# --- Inputs ----------------------------------------------------------------------


class DeviceInput(serializers.Serializer[DeviceInfo]):
    platform = serializers.ChoiceField(choices=Platform.choices)
    client_version = StrictCharField(max_length=32, validators=[validate_client_version])
    name = StrictCharField(max_length=64)
    device_uuid = serializers.UUIDField(
        required=False,
        help_text="Stable per installation: logging in again with it revokes "
        "the device's previous ticket.",
    )

    openapi_limits = {"client_version": {"pattern": CLIENT_VERSION_PATTERN.pattern}}

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
    phone = StrictCharField(
        required=False, max_length=32, help_text="Give a phone number, an e-mail, or both."
    )
    email = StrictCharField(required=False, max_length=254)
    password = StrictCharField(
        trim_whitespace=False,
        max_length=settings.PASSWORD_MAX_LENGTH,
        help_text="Not too common, not only digits.",
    )
    nickname = StrictCharField(max_length=TEXT_INPUT_MAX)
    device = DeviceInput()

    openapi_limits = {
        "password": {"minLength": _password_min_length()},
        "nickname": {"maxLength": settings.NICKNAME_MAX_LENGTH},
    }


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
    discoverable_by_email = StrictBooleanField(required=False)

    openapi_limits = {
        "nickname": {"maxLength": settings.NICKNAME_MAX_LENGTH},
        "region": {"maxLength": settings.REGION_MAX_LENGTH},
        "signature": {"maxLength": settings.SIGNATURE_MAX_LENGTH},
    }


class PasswordChangeInput(serializers.Serializer[Any]):
    old_password = StrictCharField(trim_whitespace=False, max_length=settings.PASSWORD_MAX_LENGTH)
    new_password = StrictCharField(
        trim_whitespace=False,
        max_length=settings.PASSWORD_MAX_LENGTH,
        help_text="Not too common, not only digits. Your other devices are logged out.",
    )


class PasswordChangeOutput(serializers.Serializer[Any]):
    revoked = serializers.IntegerField(help_text="How many other devices' tickets were revoked.")


class AvatarInput(serializers.Serializer[Any]):
    avatar = serializers.FileField(
        allow_empty_file=False,
        help_text=f"A JPEG, PNG, WebP or GIF image of at most {settings.AVATAR_MAX_BYTES} "
        f"bytes and {settings.AVATAR_MAX_PIXELS} pixels.",
    )


class WeChatIdInput(serializers.Serializer[Any]):
    wechat_id = StrictCharField(
        max_length=20, trim_whitespace=False, help_text="Unique ignoring case; chosen once."
    )

    openapi_limits = {"wechat_id": {"pattern": WECHAT_ID_PATTERN.pattern, "minLength": 6}}


class SearchInput(serializers.Serializer[Any]):
    q = StrictCharField(
        max_length=254, help_text="A WeChat ID, a phone number or an e-mail address (exact)."
    )


class FriendRequestCreateInput(serializers.Serializer[Any]):
    to_user_id = IdField()
    greeting = StrictCharField(required=False, allow_blank=True, max_length=TEXT_INPUT_MAX)

    openapi_limits = {"greeting": {"maxLength": settings.FRIEND_REQUEST_GREETING_MAX_LENGTH}}


class FriendRequestListInput(serializers.Serializer[Any]):
    direction = serializers.ChoiceField(choices=["incoming", "outgoing"], default="incoming")


class AcceptInput(serializers.Serializer[Any]):
    remark = StrictCharField(required=False, allow_blank=True, max_length=TEXT_INPUT_MAX)

    openapi_limits = {"remark": {"maxLength": settings.FRIEND_REMARK_MAX_LENGTH}}


class RemarkInput(serializers.Serializer[Any]):
    remark = StrictCharField(allow_blank=True, max_length=TEXT_INPUT_MAX)

    openapi_limits = {"remark": {"maxLength": settings.FRIEND_REMARK_MAX_LENGTH}}
    openapi_whole_on_patch = True  # PATCH /contacts/friends/<id> sets the remark: required


# --- Outputs ---------------------------------------------------------------------


class ContactUserOutput(serializers.Serializer[User]):
    """Someone named in a block or a friend request: their public profile if you may
    see it (you are friends in either's contacts, or they sent you a friend
    request), else only their `id`."""

    # The view puts the ids the caller may see in the context (`visible_user_ids`,
    # from selectors.users_visible); without them only ids are shown.

    id = serializers.IntegerField()
    wechat_id = serializers.CharField(required=False, allow_null=True)
    nickname = serializers.CharField(required=False)
    avatar_url = serializers.CharField(required=False, allow_null=True)
    region = serializers.CharField(required=False)
    signature = serializers.CharField(required=False)

    def to_representation(self, instance: User) -> dict[str, Any]:
        if instance.pk in self.context.get("visible_user_ids", ()):
            return dict(PublicUserOutput(instance).data)
        return {"id": instance.pk}


class MeOutput(PublicUserOutput):
    """The user's own profile, with login identifiers and home placement."""

    class Meta(PublicUserOutput.Meta):
        fields = [
            *PublicUserOutput.Meta.fields,
            "phone",
            "email",
            "discoverable_by_phone",
            "discoverable_by_wechat_id",
            "discoverable_by_email",
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
    from_user = ContactUserOutput()
    to_user = ContactUserOutput()
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
    user = ContactUserOutput(source="blocked")
    created_at = serializers.DateTimeField()


class LogoutAllOutput(serializers.Serializer[Any]):
    revoked = serializers.IntegerField(help_text="How many live tickets were revoked.")


class SearchOutput(serializers.Serializer[Any]):
    results = PublicUserOutput(many=True)
