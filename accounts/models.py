"""Users, their devices and login tickets, WeChat IDs, and contacts.

Invariants live here as database constraints (unique WeChat IDs ignoring case,
one pending request per pair, no self-friendship); workflows live in services.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone


class Platform(models.TextChoices):
    WEB = "web", "Web"
    IOS = "ios", "iOS"
    ANDROID = "android", "Android"
    WINDOWS = "windows", "Windows"
    MACOS = "macos", "macOS"
    LINUX = "linux", "Linux"
    OTHER = "other", "Other"


class UserManager(BaseUserManager["User"]):
    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email=(username or "").lower())


def avatar_upload_path(instance: User, filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "img"
    return f"avatars/{instance.pk}/{uuid.uuid4().hex}.{extension}"


class User(AbstractBaseUser, PermissionsMixin):
    # Login identifiers: E.164 phone and lower-cased e-mail; at least one is set.
    phone = models.CharField(max_length=20, unique=True, null=True, blank=True)
    email = models.EmailField(max_length=254, unique=True, null=True, blank=True)
    # As the user typed it; uniqueness ignores case (constraint below and WeChatIdClaim).
    # NULL, not "", for "not chosen yet": the unique constraint must ignore those users.
    wechat_id = models.CharField(max_length=20, null=True, blank=True, editable=False)  # noqa: DJ001
    nickname = models.CharField(max_length=64)
    avatar = models.ImageField(upload_to=avatar_upload_path, blank=True, default="")
    region = models.CharField(max_length=64, blank=True, default="")
    signature = models.CharField(max_length=200, blank=True, default="")
    discoverable_by_phone = models.BooleanField(default=True)
    discoverable_by_wechat_id = models.BooleanField(default=True)
    discoverable_by_email = models.BooleanField(default=True)
    home_datacenter = models.ForeignKey(
        "wechat_core.DataCenter", on_delete=models.PROTECT, related_name="+"
    )
    home_campus = models.ForeignKey(
        "wechat_core.Campus", on_delete=models.PROTECT, related_name="+"
    )
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("wechat_id"), name="user_wechat_id_unique_ci"),
            models.CheckConstraint(
                condition=Q(phone__isnull=False) | Q(email__isnull=False),
                name="user_has_login_identifier",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.nickname} ({self.wechat_id or self.email or self.phone or self.pk})"


class WeChatIdClaim(models.Model):
    """The global WeChat ID registry (DESIGN.md §9): one row per ID ever claimed.

    In a multi-data-centre deployment this table lives with the global
    allocation service; users' rows keep a copy of their ID.
    """

    normalized = models.CharField(max_length=20, primary_key=True)
    wechat_id = models.CharField(max_length=20)
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="wechat_id_claim")
    datacenter = models.CharField(max_length=16)
    claimed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "WeChat ID claim"

    def __str__(self) -> str:
        return self.wechat_id


class Device(models.Model):
    """A client installation the user logged in from; each has its own tickets."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="devices")
    device_uuid = models.UUIDField(default=uuid.uuid4)
    platform = models.CharField(max_length=16, choices=Platform.choices)
    client_version = models.CharField(max_length=32)
    name = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    last_ip = models.GenericIPAddressField(null=True, blank=True)
    # Set when the user logs the device out or removes it; a new login restores it.
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "device_uuid"], name="device_unique_per_user"),
        ]
        ordering = ["-last_seen_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.platform} {self.client_version})"


class RevocationReason(models.TextChoices):
    LOGOUT = "logout", "Logged out"
    LOGOUT_ALL = "logout_all", "Logged out everywhere"
    DEVICE_REMOVED = "device_removed", "Device removed"
    RELOGIN = "relogin", "Replaced by a new login on the device"
    DEVICE_LIMIT = "device_limit", "Too many devices"
    OPERATOR = "operator", "Revoked by an operator"
    PASSWORD_CHANGED = "password_changed", "Password changed on another device"


class Ticket(models.Model):
    """A login ticket. Only a SHA-256 of its secret is stored; the ticket itself
    is shown once, to the device that logged in."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tickets")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="tickets")
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(
        max_length=16, choices=RevocationReason.choices, blank=True, default=""
    )

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"], name="ticket_user_live")]

    def __str__(self) -> str:
        return f"ticket #{self.pk} of {self.user_id}"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class FriendRequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    EXPIRED = "expired", "Expired"


class FriendRequest(models.Model):
    from_user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    to_user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    greeting = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(
        max_length=16, choices=FriendRequestStatus.choices, default=FriendRequestStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["from_user", "to_user"],
                condition=Q(status="pending"),
                name="friend_request_one_pending_per_pair",
            ),
            models.CheckConstraint(
                condition=~Q(from_user=F("to_user")), name="friend_request_not_to_self"
            ),
        ]
        indexes = [models.Index(fields=["to_user", "status"], name="friend_request_inbox")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_user_id} → {self.to_user_id} ({self.status})"


class Friendship(models.Model):
    """One side of a friendship: `friend` is in `owner`'s contacts, with owner's remark.

    Deleting a friend removes only the owner's side, as WeChat does; messaging
    requires both sides.
    """

    owner = models.ForeignKey(User, on_delete=models.CASCADE, related_name="friendships")
    friend = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    remark = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)  # origin's on replicas

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "friend"], name="friendship_unique_pair"),
            models.CheckConstraint(condition=~Q(owner=F("friend")), name="friendship_not_self"),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.owner_id} ⇢ {self.friend_id}"


class Block(models.Model):
    """`blocker` refuses friend requests and messages from `blocked`."""

    blocker = models.ForeignKey(User, on_delete=models.CASCADE, related_name="blocks")
    blocked = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blocker", "blocked"], name="block_unique_pair"),
            models.CheckConstraint(condition=~Q(blocker=F("blocked")), name="block_not_self"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.blocker_id} blocks {self.blocked_id}"
