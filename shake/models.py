"""Activities, their sponsors and rounds, and the packets generated ahead (`Prize`).

A prize's life (docs/shake.md): `pool` (generated, in its slice) → `reserved`
(a batch claimed by one access process instance, durable before any of it is
handed out) → `issued` (the process recorded whom it handed it to) → `opened`
(the winner opened it; crediting follows on payout_fast). A reservation whose
owner died is never handed out again under the same id: after the open window
its unopened prizes are `recycled` (a new prize row with a new id carries the
amount back to the pool).

Coupons (`kind = coupon`) belong to a `Business`; opening one makes its
`CouponDelivery`, whose state machine delivers it to the business on payout_slow."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Activity(models.Model):
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)
    # Set once by activity_approve: the prizes exist and the budget is funded.
    approved_at = models.DateTimeField(null=True, blank=True)
    budget_fen = models.BigIntegerField(default=0)
    # The asset manifest's version (docs/shake.md "Sponsor assets"): bumped whenever
    # an asset is added or replaced, so clients and access processes see a change.
    assets_version = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "activities"

    def __str__(self) -> str:
        return self.name

    @property
    def budget_reference(self) -> str:
        return f"shake:{self.pk}"


class ActivitySettlement(models.Model):
    """The close of an activity (services.settlement, docs/shake.md "Closing an
    activity"): once its last round is over and nothing more can come back into its
    budget, the budget's rest goes back to the account that funded it, in one ledger
    transaction (`shake:<activity>:settle`). What winners of opened prizes are still to
    be credited stays in the budget (`held_back`). One per activity: it is the audit
    record of who closed it, when, why, and what moved."""

    activity = models.OneToOneField(Activity, on_delete=models.PROTECT, related_name="settlement")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150)  # "system": the beat's pass
    reason = models.CharField(max_length=200, blank=True)
    balance = models.BigIntegerField()  # the budget's balance when it was closed
    held_back = models.BigIntegerField()  # owed to winners of opened, uncredited prizes
    returned = models.BigIntegerField()  # back to the funding account (balance - held_back)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(held_back__gte=0, returned__gte=0)
                & Q(balance=models.F("held_back") + models.F("returned")),
                name="shake_settlement_balanced",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.activity} closed: {self.returned} fen returned"

    @property
    def idempotency_key(self) -> str:
        return f"shake:{self.activity_id}:settle"


class Sponsor(models.Model):
    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="sponsors")
    name = models.CharField(max_length=100)
    logo_url = models.URLField(max_length=500)
    background = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return self.name


class AssetRole(models.TextChoices):
    LOGO = "logo", "Logo"
    BACKGROUND = "background", "Background image"


class SponsorAsset(models.Model):
    """A sponsor's image stored here ahead of the show (seed 004: pushed before the
    gala, so the peak fetches nothing). Its file is under MEDIA at a name made of its
    SHA-256, served from our origin at a URL with the hash in it; one asset per
    sponsor and role (an import replaces it)."""

    sponsor = models.ForeignKey(Sponsor, on_delete=models.CASCADE, related_name="assets")
    role = models.CharField(max_length=12, choices=AssetRole.choices)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    content_type = models.CharField(max_length=50)
    file = models.FileField(upload_to="shake/assets/", max_length=200)
    source = models.CharField(max_length=500, blank=True)  # where it was imported from
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sponsor", "role"], name="shake_asset_sponsor_role")
        ]
        indexes = [models.Index(fields=["sha256"], name="shake_asset_sha256")]

    def __str__(self) -> str:
        return f"{self.sponsor} {self.role} {self.sha256[:12]}"


class AssetPush(models.Model):
    """The progress of pushing one manifest version to everyone signed in
    (services.assets, docs/shake.md "Sponsor assets"). Users get their `shake_assets`
    entry in user-id order, a batch per transaction, and the same transaction moves
    `after_user` past them: a worker killed mid-push loses nobody and repeats nobody,
    and whoever resumes (the beat's resume pass, or the task itself redelivered)
    continues after the cursor. `updated_at` moves with every batch: a push unfinished
    and not moving for SHAKE_ASSETS_PUSH_STALE_SECONDS is resumed."""

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="asset_pushes")
    version = models.PositiveIntegerField()
    after_user = models.BigIntegerField(default=0)  # the last user given the entry
    pushed = models.PositiveIntegerField(default=0)  # users given the entry so far
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # Set when every signed-in user has it, or when a newer version superseded it (the
    # newer push tells everyone; `superseded` says which).
    finished_at = models.DateTimeField(null=True, blank=True)
    superseded = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["activity", "version"], name="shake_asset_push_once")
        ]
        indexes = [
            models.Index(
                fields=["updated_at"],
                condition=Q(finished_at__isnull=True),
                name="shake_asset_push_unfinished",
            )
        ]

    def __str__(self) -> str:
        return f"push of {self.activity} assets v{self.version} (after user {self.after_user})"


class Round(models.Model):
    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="rounds")
    title = models.CharField(max_length=100)
    planned_start = models.DateTimeField()
    # The round starts by itself at this time even if no operator command came (the
    # countdown fallback, seed 004), unless the countdown was corrected (countdown_at).
    latest_start = models.DateTimeField()
    duration_seconds = models.PositiveIntegerField()
    # The global issue rate (packets per second across all access processes).
    issue_rate = models.PositiveIntegerField()
    per_user_cap = models.PositiveSmallIntegerField(default=3)
    per_sponsor_cap = models.PositiveSmallIntegerField(default=1)
    # Staggered groups (seed 003 错峰): users are dealt into SHAKE_STAGGER_GROUPS groups by
    # a stable hash, and group g may shake from the round's start + g * this many
    # seconds (0: everyone at the start; else 60 to 300, the seed's 1 to 5 minutes).
    stagger_seconds = models.PositiveIntegerField(default=0)
    # Number of disjoint slices its prizes are split into (access process slots).
    slices = models.PositiveSmallIntegerField()
    # What approval generates: [{"sponsor": index, "count", "total", "kind",
    # "extra_shares"}] (services.activities.PrizePlan).
    prize_plan = models.JSONField(default=list)
    # Live control (services.control, docs/shake.md): the operator's start command, the
    # corrected countdown, pauses and the end. Each change bumps control_version (the
    # id of its audit event) and reaches every access process by three routes.
    started_at = models.DateTimeField(null=True, blank=True)
    countdown_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_seconds = models.FloatField(default=0.0)
    ended_at = models.DateTimeField(null=True, blank=True)
    control_version = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(latest_start__gte=models.F("planned_start")),
                name="shake_round_latest_after_planned",
            ),
            models.CheckConstraint(condition=Q(slices__gte=1), name="shake_round_slices"),
            models.CheckConstraint(
                condition=Q(stagger_seconds=0)
                | Q(stagger_seconds__gte=60, stagger_seconds__lte=300),
                name="shake_round_stagger",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.activity} / {self.title}"


class ControlAction(models.TextChoices):
    START = "start", "Started now"
    STAGGER = "stagger", "Stagger changed"
    COUNTDOWN = "countdown", "Countdown corrected"
    PAUSE = "pause", "Paused"
    RESUME = "resume", "Resumed"
    END = "end", "Ended"


class RoundControlEvent(models.Model):
    """Audit trail of live control: who changed which round, when, how, and why; its
    id is the round's new control version."""

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="control_events")
    action = models.CharField(max_length=12, choices=ControlAction.choices)
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150)
    reason = models.CharField(max_length=200, blank=True)
    # The round's schedule before and after (start, end, paused, countdown), ISO times.
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.round} {self.action} by {self.actor_label}"


class QuotaConfig(models.Model):
    """A round's lottery quotas (seed 003): the most prizes of each class issued per
    second across all access processes, e.g. {"cash": 30, "sponsor:7": 2}. A class
    without an entry is held only by the round's issue rate. Each change is a new row
    (its id is the version, the seed's SeqNo); access processes load the newest whole
    and swap it in at once."""

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="quota_configs")
    per_second = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    actor_label = models.CharField(max_length=150, default="system")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"quotas v{self.pk} of {self.round}"


class Business(models.Model):
    """A business whose coupons are prizes (seed 003's 礼券): operators configure its
    endpoint, the secret requests to it are signed with, and its capacity. Coupons are
    delivered to it on `payout_slow` at `rate_per_second` (docs/shake.md "Coupons")."""

    name = models.CharField(max_length=100, unique=True)
    endpoint = models.URLField(max_length=500)
    secret = models.CharField(max_length=200)
    rate_per_second = models.PositiveIntegerField()
    timeout_seconds = models.FloatField(default=2.0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "businesses"
        constraints = [
            models.CheckConstraint(condition=Q(rate_per_second__gte=1), name="shake_business_rate"),
            models.CheckConstraint(
                condition=Q(timeout_seconds__gt=0), name="shake_business_timeout"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PrizeKind(models.TextChoices):
    CASH = "cash", "Cash packet"
    SPONSOR = "sponsor", "Sponsor packet (with extra shares to pass on)"
    COUPON = "coupon", "Coupon of a business (delivered to it on payout_slow)"


class PrizeState(models.TextChoices):
    POOL = "pool", "In its slice, not reserved"
    RESERVED = "reserved", "Reserved by an access process instance"
    ISSUED = "issued", "Handed to a winner (recorded by the issuing process)"
    OPENED = "opened", "Opened by its winner"
    RECYCLED = "recycled", "Unopened under a dead reservation; its amount went back as a new prize"


class Prize(models.Model):
    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="prizes")
    slice = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=8, choices=PrizeKind.choices)
    amount = models.PositiveIntegerField()  # fen
    sponsor = models.ForeignKey(Sponsor, on_delete=models.PROTECT, related_name="+")
    extra_shares = models.PositiveSmallIntegerField(default=0)
    # Sponsor packets: the fen of all the extra shares together (funded in the budget),
    # passed on by the winner as a chat red packet (seed 004's 分裂红包).
    extra_amount = models.PositiveIntegerField(default=0)
    shares_packet = models.ForeignKey(
        "redpackets.Packet", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Extra shares not passed on in time (SHAKE_SHARES_PASS_ON_SECONDS) went back to the
    # pool of a later round as cash prizes (`shares_of` points back here): then, never
    # passed on. A prize has either a shares packet or this, never both.
    shares_recycled_at = models.DateTimeField(null=True, blank=True)
    shares_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="recycled_shares"
    )
    # Shares passed on that nobody grabbed: their red packet refunded the rest into the
    # budget (its refund account), and this many fen of it went back to the pool of a
    # later round as cash prizes (`shares_of` points back here too).
    shares_returned = models.PositiveIntegerField(default=0)
    shares_returned_at = models.DateTimeField(null=True, blank=True)
    # HMAC of (id, round, amount, kind, sponsor, extra shares and their amount) under the
    # shake key: an
    # access process hands out only prizes whose signature it can check.
    signature = models.CharField(max_length=64)
    state = models.CharField(max_length=8, choices=PrizeState.choices, default=PrizeState.POOL)
    # The access process instance (a fresh id per process start) holding the reservation.
    reserved_by = models.CharField(max_length=64, blank=True)
    reserved_at = models.DateTimeField(null=True, blank=True)
    winner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    issued_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    credited_at = models.DateTimeField(null=True, blank=True)
    recycled_as = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="recycled_from"
    )
    # Coupons: the business that delivers them and its name for the coupon; `amount` is
    # then the coupon's face value, shown to the winner and not funded from the budget.
    business = models.ForeignKey(
        Business, null=True, blank=True, on_delete=models.PROTECT, related_name="prizes"
    )
    coupon = models.CharField(max_length=100, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["round", "slice", "id"],
                condition=Q(state="pool"),
                name="shake_prize_pool",
            ),
            models.Index(fields=["reserved_by"], name="shake_prize_reserved_by"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="shake_prize_amount_positive"),
            models.CheckConstraint(
                condition=Q(shares_packet__isnull=True) | Q(shares_recycled_at__isnull=True),
                name="shake_prize_shares_passed_or_recycled",
            ),
            models.CheckConstraint(
                condition=Q(shares_returned_at__isnull=True, shares_returned=0)
                | Q(
                    shares_packet__isnull=False,
                    shares_returned__gt=0,
                    shares_returned_at__isnull=False,
                ),
                name="shake_prize_shares_returned_from_a_packet",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["pool", "reserved", "recycled"]) | Q(winner__isnull=False),
                name="shake_prize_winner_when_issued",
            ),
            models.CheckConstraint(
                condition=Q(kind="coupon", business__isnull=False)
                | (~Q(kind="coupon") & Q(business__isnull=True)),
                name="shake_prize_coupon_has_business",
            ),
        ]

    def __str__(self) -> str:
        return f"prize {self.pk} ({self.amount} fen, {self.state})"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Waiting for its turn at the business's rate"
    SENDING = "sending", "Claimed by a worker, the request under way"
    DEFERRED = "deferred", "The winner has no account at the business yet"
    DELIVERED = "delivered", "The business granted it (final)"
    FAILED = "failed", "The last attempt failed; retried, then left to reconciliation"


class CouponDelivery(models.Model):
    """The delivery record of one opened coupon (seed 003's 发货状态), made in the
    transaction that records the opening. Its state machine (docs/shake.md "Coupons"):
    pending → sending → delivered | deferred | failed | pending (too fast); failed →
    sending (retries); deferred, failed → pending (the winner's retry, reconciliation);
    delivered is final. The business sees `idempotency_key`, one per prize, however
    often a delivery is retried or its task redelivered."""

    prize = models.OneToOneField(Prize, on_delete=models.PROTECT, related_name="delivery")
    business = models.ForeignKey(Business, on_delete=models.PROTECT, related_name="deliveries")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # When the current claim was taken: a claim older than the lease is taken over
    # (its worker died mid-call; the business's idempotency makes the redo safe).
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=20, blank=True)
    last_detail = models.CharField(max_length=300, blank=True)
    reference = models.CharField(max_length=100, blank=True)  # the business's id for it
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "coupon deliveries"
        indexes = [models.Index(fields=["state", "updated_at"], name="shake_delivery_state")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(state="delivered") | Q(delivered_at__isnull=False),
                name="shake_delivery_delivered_at",
            ),
        ]

    def __str__(self) -> str:
        return f"delivery of prize {self.prize_id} ({self.state})"

    @property
    def idempotency_key(self) -> str:
        return f"shake-coupon-{self.prize_id}"
