"""Topology: data centres and their campuses, with the audited campus-blocking switch.

Users have a home data centre (DESIGN.md §9); each data centre's services are
spread over campuses that serve at the same time, and operators can block a
whole campus in one move (§8). What blocking does to traffic comes later; here
the switch, its audit trail and its propagation to every process.

The per-user sync log's models live in wechat_core.sync.models; they are imported
here so that Django registers them with this app.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from wechat_core.replication.models import (
    OutboxEntry,
    ParkedEntry,
    ReplayError,
    ReplayPosition,
)
from wechat_core.sync.models import EntryKind, SyncEntry, UserSequence

__all__ = [
    "Campus",
    "CampusBlockEvent",
    "DataCenter",
    "EntryKind",
    "OutboxEntry",
    "ParkedEntry",
    "ReplayError",
    "ReplayPosition",
    "SyncEntry",
    "UserSequence",
]

code_validator = RegexValidator(
    r"^[a-z][a-z0-9-]{0,15}$", "Lower-case letters, digits and '-', starting with a letter."
)


class DataCenter(models.Model):
    code = models.CharField(max_length=16, primary_key=True, validators=[code_validator])
    name = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name = "data centre"

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class Campus(models.Model):
    code = models.CharField(max_length=16, primary_key=True, validators=[code_validator])
    datacenter = models.ForeignKey(DataCenter, on_delete=models.PROTECT, related_name="campuses")
    name = models.CharField(max_length=64)
    # Access endpoints clients may connect to in this campus (one URL per line).
    endpoints = models.TextField(blank=True, default="")
    blocked = models.BooleanField(default=False)
    blocked_changed_at = models.DateTimeField(null=True, blank=True)
    blocked_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["datacenter_id", "code"]
        verbose_name_plural = "campuses"

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def endpoint_list(self) -> list[str]:
        return [line.strip() for line in self.endpoints.splitlines() if line.strip()]


class CampusBlockEvent(models.Model):
    """Audit trail of the blocking switch: who flipped it, when, which way, why."""

    campus = models.ForeignKey(Campus, on_delete=models.CASCADE, related_name="block_events")
    blocked = models.BooleanField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text="Who, kept if the account goes.")
    reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return (
            f"{self.campus_id} {'blocked' if self.blocked else 'unblocked'} by {self.actor_label}"
        )
