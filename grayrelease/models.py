"""Features, their rules and rollout schedules, and the audit trail of every change.

A feature's targeting lists (allow, deny, platforms, data centres, campuses)
are JSON lists on its row; version ranges, time windows and schedule stages
are rows of their own, and a guarded rollout's settings are columns. Rules are
validated by grayrelease.rules and written only through grayrelease.services,
which audit each change and publish it to every process. The guard's last
verdict sits beside its settings: a reading, not a change, so not audited.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from grayrelease.rules import DESCRIPTION_MAX, KEY_PATTERN
from grayrelease.types import GuardAction, GuardState

BASIS_POINTS_HELP = "In basis points: 100 = 1 %, 10000 = 100 %."


GUARD_ACTIONS = [
    (GuardAction.PAUSE.value, "pause the schedule"),
    (GuardAction.ROLLBACK.value, "roll back to 0 %"),
]


def new_salt() -> str:
    return secrets.token_hex(8)


class ScheduleStatus(models.TextChoices):
    IDLE = "idle", "Not started"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"


class Feature(models.Model):
    key = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(KEY_PATTERN.pattern)],
        help_text="How code names the feature, e.g. web.chat_search. Cannot change.",
    )
    description = models.TextField(blank=True, default="", max_length=DESCRIPTION_MAX)
    client_visible = models.BooleanField(
        default=False,
        help_text="Sent to clients at login and pushed through SYNC when it changes for them.",
    )
    killed = models.BooleanField(
        default=False, help_text="Kill switch: off for everyone, whatever the other rules say."
    )
    percentage_bp = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(10_000)], help_text=BASIS_POINTS_HELP
    )
    allow = models.JSONField(default=list, blank=True)
    deny = models.JSONField(default=list, blank=True)
    platforms = models.JSONField(default=list, blank=True)
    datacenters = models.JSONField(default=list, blank=True)
    campuses = models.JSONField(default=list, blank=True)
    # Decides each user's bucket; random so that rollouts are independent.
    salt = models.CharField(max_length=32, default=new_salt, editable=False)
    # Counts changes: devices keep the value of the highest revision they saw.
    revision = models.PositiveIntegerField(default=1, editable=False)
    schedule_status = models.CharField(
        max_length=16, choices=ScheduleStatus.choices, default=ScheduleStatus.IDLE, editable=False
    )
    stage_position = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    stage_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Up to when clients were told of time windows opening and closing (beat).
    windows_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A guarded rollout (grayrelease.services.guard). The settings are rules like
    # the others (audited); the verdict is the guard's last reading, not a change.
    guarded = models.BooleanField(
        default=False,
        help_text="Record outcomes per variant and pause or roll back the rollout when the "
        "treated users fail more than the control group.",
    )
    guard_margin_bp = models.PositiveIntegerField(
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text="How far the treated users' error rate may exceed the control's, in basis "
        "points of error rate: 100 = 1 percentage point.",
    )
    guard_min_sample = models.PositiveIntegerField(
        default=100, help_text="Outcomes each variant needs in the window before any verdict."
    )
    guard_window_seconds = models.PositiveIntegerField(
        default=600, help_text="The guard judges the outcomes of this many seconds."
    )
    guard_action = models.CharField(
        max_length=8,
        choices=GUARD_ACTIONS,
        default=GuardAction.PAUSE.value,
    )
    # The guard reads outcomes from here on: an operator's change starts its evidence afresh.
    guard_since = models.DateTimeField(null=True, blank=True, editable=False)
    guard_state = models.CharField(
        max_length=12,
        choices=[(state.value, state.value) for state in GuardState],
        blank=True,
        default="",
        editable=False,
    )
    guard_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    guard_explanation = models.CharField(max_length=300, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.CheckConstraint(
                condition=Q(percentage_bp__gte=0, percentage_bp__lte=10_000),
                name="feature_percentage_in_range",
            ),
            models.CheckConstraint(
                condition=Q(guard_margin_bp__gte=1, guard_margin_bp__lte=10_000),
                name="feature_guard_margin_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.key


class VersionRange(models.Model):
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="version_ranges")
    min_version = models.CharField(
        max_length=32, blank=True, default="", help_text="Inclusive; empty: no minimum."
    )
    max_version = models.CharField(
        max_length=32, blank=True, default="", help_text="Exclusive; empty: no maximum."
    )

    class Meta:
        ordering = ["feature_id", "id"]
        verbose_name = "client-version range"

    def __str__(self) -> str:
        return f"[{self.min_version or '…'}, {self.max_version or '…'})"


class TimeWindow(models.Model):
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="time_windows")
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Empty: already open.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never closes.")

    class Meta:
        ordering = ["feature_id", "id"]

    def __str__(self) -> str:
        return f"{self.starts_at or '…'} - {self.ends_at or '…'}"


class RolloutStage(models.Model):
    feature = models.ForeignKey(Feature, on_delete=models.CASCADE, related_name="stages")
    position = models.PositiveSmallIntegerField()
    percentage_bp = models.PositiveIntegerField(
        validators=[MaxValueValidator(10_000)], help_text=BASIS_POINTS_HELP
    )
    soak_minutes = models.PositiveIntegerField(
        help_text="The least time at this stage before the schedule widens the rollout."
    )

    class Meta:
        ordering = ["feature_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["feature", "position"], name="stage_unique_position")
        ]

    def __str__(self) -> str:
        return f"{self.percentage_bp / 100:.2f} % for {self.soak_minutes} min"


class ChangeAction(models.TextChoices):
    CREATED = "created", "Created"
    UPDATED = "updated", "Rules changed"
    KILLED = "killed", "Killed"
    REVIVED = "revived", "Kill switch released"
    DELETED = "deleted", "Deleted"
    SCHEDULE_STARTED = "schedule_started", "Schedule started"
    SCHEDULE_PAUSED = "schedule_paused", "Schedule paused"
    SCHEDULE_RESUMED = "schedule_resumed", "Schedule resumed"
    STAGE_ADVANCED = "stage_advanced", "Stage advanced"
    WINDOW_OPENED = "window_opened", "Time window opened"
    WINDOW_CLOSED = "window_closed", "Time window closed"
    GUARD_PAUSED = "guard_paused", "Paused by the rollout guard"
    GUARD_ROLLED_BACK = "guard_rolled_back", "Rolled back by the rollout guard"


class PushStatus(models.TextChoices):
    NOT_NEEDED = "not_needed", "Not client-visible"
    PENDING = "pending", "Pending"
    DONE = "done", "Done"


class FeatureChange(models.Model):
    """One change of a feature: who, when, what it was before and after.

    `before` and `after` are the whole state ({"spec", "revision", "schedule"});
    the push to connected clients is computed from them, so it is right even
    when it runs late. `push_cursor` is the last user id pushed to, so a push
    that was interrupted resumes where it stopped.
    """

    feature = models.ForeignKey(
        Feature, null=True, blank=True, on_delete=models.SET_NULL, related_name="changes"
    )
    feature_key = models.CharField(max_length=64, db_index=True)
    revision = models.PositiveIntegerField()
    action = models.CharField(max_length=24, choices=ChangeAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text="Who, kept if the account goes.")
    comment = models.CharField(max_length=200, blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    push_status = models.CharField(max_length=16, choices=PushStatus.choices)
    push_cursor = models.BigIntegerField(default=0)
    pushed_users = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["push_status", "created_at"],
                condition=Q(push_status="pending"),
                name="feature_change_push_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.feature_key} r{self.revision} {self.action} by {self.actor_label}"
