"""Official accounts, their followers, developer credentials, webhook deliveries,
mass-send jobs, keyword auto-replies and search pools (DESIGN.md §10).

- An `OfficialAccount` speaks in conversations through its own service identity
  (an accounts.User that can never log in); each `Follower` has one conversation
  with it (messaging kind `official`) and a stable openid.
- A `WebhookDelivery` is one push (a user's message or an event) to the
  developer's server; each try is a `WebhookAttempt` (Saleor style). The pushed
  plaintext XML is stored once, so every attempt sends the same bytes.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from publicplatform.keywords import PatternRefused, pattern_compile


class EncryptionMode(models.TextChoices):
    PLAIN = "plain", "Plain text (明文模式)"
    SAFE = "safe", "Safe mode, AES (安全模式)"


class OfficialAccount(models.Model):
    name = models.CharField(max_length=64)
    description = models.CharField(max_length=200, blank=True, default="")
    appid = models.CharField(max_length=18, unique=True)
    # Only a SHA-256 of the AppSecret is kept; the secret is shown once, when it is made.
    secret_hash = models.CharField(max_length=64, editable=False)
    original_id = models.CharField(max_length=15, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="official_accounts",
    )
    service_user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="official_account"
    )
    # The developer's server (服务器配置): webhooks go there once verified.
    server_url = models.URLField(max_length=500, blank=True, default="")
    token = models.CharField(max_length=32, blank=True, default="")
    encoding_aes_key = models.CharField(max_length=43, blank=True, default="")
    encryption_mode = models.CharField(
        max_length=8, choices=EncryptionMode.choices, default=EncryptionMode.PLAIN
    )
    server_verified_at = models.DateTimeField(null=True, blank=True)
    # Certified by an operator (认证); shown to users next to the name.
    is_verified = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    # Accounts bound to one Open Platform id share unionids (reference §7).
    open_platform_id = models.CharField(max_length=32, blank=True, default="")
    greeting = models.CharField(max_length=600, blank=True, default="")
    menu = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.appid})"

    @property
    def has_server(self) -> bool:
        return bool(self.server_url and self.server_verified_at)


class Follower(models.Model):
    """A user's relation to an account, kept after unfollowing: the openid and the
    conversation stay the same when they follow again."""

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    openid = models.CharField(max_length=28)
    conversation_id = models.BigIntegerField()
    subscribed = models.BooleanField(default=True)
    subscribed_at = models.DateTimeField()
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    remark = models.CharField(max_length=30, blank=True, default="")
    # The 48-hour customer-service window opens at the follower's last interaction;
    # custom_sent counts the account's messages since then.
    last_interaction_at = models.DateTimeField()
    custom_sent = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="follower_unique_user"),
            models.UniqueConstraint(fields=["account", "openid"], name="follower_unique_openid"),
        ]
        indexes = [
            models.Index(fields=["account", "subscribed", "openid"], name="follower_list"),
            models.Index(fields=["conversation_id"], name="follower_conversation"),
        ]

    def __str__(self) -> str:
        return f"{self.openid} → {self.account_id}"


class AccessToken(models.Model):
    """An access_token issued to a developer; only its SHA-256 is stored. Every token
    stays valid for its whole lifetime, whatever was issued after it."""

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True)
    issued_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    issued_to_ip = models.GenericIPAddressField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token of {self.account_id} until {self.expires_at:%Y-%m-%d %H:%M}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed after the last attempt"


class WebhookDelivery(models.Model):
    """One push to the developer's server and what came of it."""

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="+")
    follower = models.ForeignKey(Follower, null=True, blank=True, on_delete=models.SET_NULL)
    msg_type = models.CharField(max_length=16)
    event = models.CharField(max_length=32, blank=True, default="")
    # MsgId of a user's message (our message id); unique per account, so a message
    # is never pushed twice. Events have none (the developer dedups them by
    # FromUserName + CreateTime, which retries keep).
    msg_id = models.BigIntegerField(null=True, blank=True)
    create_time = models.BigIntegerField()
    payload = models.TextField()
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempt_count = models.PositiveSmallIntegerField(default=0)
    reply_type = models.CharField(max_length=32, blank=True, default="")
    reply_message_id = models.BigIntegerField(null=True, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "msg_id"],
                condition=Q(msg_id__isnull=False),
                name="delivery_unique_msg_id",
            )
        ]
        indexes = [models.Index(fields=["account", "-id"], name="delivery_log")]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.msg_type}{':' + self.event if self.event else ''} → {self.account_id}"


class AttemptOutcome(models.TextChoices):
    REPLIED = "replied", "Passive reply relayed"
    NO_REPLY = "no_reply", "No reply (empty or success)"
    TIMEOUT = "timeout", "No answer in time"
    CONNECT_ERROR = "connect_error", "Could not connect"
    HTTP_ERROR = "http_error", "HTTP status other than 200"
    BAD_REPLY = "bad_reply", "Not a valid reply"
    TOO_LARGE = "too_large", "Reply too large"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    latency_ms = models.FloatField()
    url = models.CharField(max_length=1000)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)
    detail = models.CharField(max_length=300, blank=True, default="")
    response_excerpt = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_unique_number")
        ]
        ordering = ["delivery_id", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"


class MassJobStatus(models.TextChoices):
    RUNNING = "running", "Sending"
    FINISHED = "finished", "Finished"


class MassJob(models.Model):
    """One mass send (群发); sent in batches by Celery, reported to the developer with
    the MASSSENDJOBFINISH event."""

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="+")
    msg_type = models.CharField(max_length=16)
    content = models.JSONField()
    to_all = models.BooleanField(default=False)
    # Openids named by mass/send; empty for sendall.
    openids = models.JSONField(default=list, blank=True)
    client_msg_id = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(
        max_length=10, choices=MassJobStatus.choices, default=MassJobStatus.RUNNING
    )
    # Sendall walks followers by id; mass/send walks its openid list by index.
    cursor = models.BigIntegerField(default=0)
    total_count = models.PositiveIntegerField(default=0)
    filter_count = models.PositiveIntegerField(default=0)
    sent_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "client_msg_id"],
                condition=~Q(client_msg_id=""),
                name="mass_job_unique_client_msg_id",
            )
        ]

    def __str__(self) -> str:
        return f"mass job {self.pk} of {self.account_id} ({self.status})"


class MessageTemplate(models.Model):
    """A template for template messages (模板消息): `content` has {{key.DATA}} slots."""

    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="+")
    template_id = models.CharField(max_length=64)
    title = models.CharField(max_length=64)
    content = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "template_id"], name="template_unique_per_account"
            )
        ]

    def __str__(self) -> str:
        return self.title


class MatchKind(models.TextChoices):
    EXACT = "exact", "The whole message"
    CONTAINS = "contains", "Contains"
    REGEX = "regex", "Regular expression"


class AutoReply(models.Model):
    """A keyword reply of an account without a server (关键词回复); first match wins,
    lowest position first."""

    account = models.ForeignKey(
        OfficialAccount, on_delete=models.CASCADE, related_name="auto_replies"
    )
    match = models.CharField(max_length=8, choices=MatchKind.choices, default=MatchKind.EXACT)
    pattern = models.CharField(max_length=200)
    reply = models.TextField(max_length=600)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name_plural = "auto replies"

    def __str__(self) -> str:
        return f"{self.match}: {self.pattern}"

    def clean(self) -> None:
        """A regex rule must compile (the admin's inline form runs this; the
        console goes through services.accounts.autoreply_add, which checks too)."""
        if self.match == MatchKind.REGEX:
            try:
                pattern_compile(self.pattern)
            except PatternRefused as error:
                raise ValidationError({"pattern": f"Does not compile: {error}."}) from error


class Pool(models.Model):
    """Searching the pool's name finds one of its members at random (seed 000: `szdy`)."""

    name = models.CharField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class PoolMember(models.Model):
    pool = models.ForeignKey(Pool, on_delete=models.CASCADE, related_name="members")
    account = models.ForeignKey(OfficialAccount, on_delete=models.CASCADE, related_name="+")
    weight = models.PositiveIntegerField(default=1)
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "account"], name="pool_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.account_id} in {self.pool_id} (weight {self.weight})"
