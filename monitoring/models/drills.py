"""Reports of DR drills (seed 000: 容灾拨测): one campus blocked for a few minutes
while synthetic clients chat, failures compared before and during
(drills/services.py; shown at /monitoring/drills)."""

from __future__ import annotations

from django.db import models


class DrillOutcome(models.TextChoices):
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed: failures did not rise"
    FAILED = "failed", "Failed: failures rose"
    ABORTED = "aborted", "Aborted: failures rose, the campus was unblocked at once"
    SKIPPED = "skipped", "Skipped: nothing to drill"


class DrDrill(models.Model):
    campus = models.CharField(max_length=16, blank=True, default="")
    trigger = models.CharField(max_length=16, help_text="command or beat")
    outcome = models.CharField(
        max_length=16, choices=DrillOutcome.choices, default=DrillOutcome.RUNNING
    )
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    blocked_at = models.DateTimeField(null=True, blank=True)
    unblocked_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    planned_block_seconds = models.FloatField(default=0)
    clients = models.PositiveIntegerField(default=0)
    before_sent = models.PositiveIntegerField(default=0)
    before_failed = models.PositiveIntegerField(default=0)
    during_sent = models.PositiveIntegerField(default=0)
    during_failed = models.PositiveIntegerField(default=0)
    moved_clients = models.PositiveIntegerField(default=0, help_text="links the block moved")
    reconnect_max_ms = models.PositiveIntegerField(null=True, blank=True)
    explanation = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = "DR drill"

    def __str__(self) -> str:
        return f"drill {self.pk} of {self.campus or '-'}: {self.outcome}"

    @property
    def before_rate(self) -> float:
        return self.before_failed / self.before_sent if self.before_sent else 0.0

    @property
    def during_rate(self) -> float:
        return self.during_failed / self.during_sent if self.during_sent else 0.0
