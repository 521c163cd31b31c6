"""The replication log (issue 17): a transactional outbox and the replay positions.

`OutboxEntry`: a change other data centres need, written in the transaction of the
write itself. The relay numbers entries (`position`, contiguous from 1, in the
order it ships them) and marks them shipped once the broker confirmed them.
`ReplayPosition`: per origin data centre, the last position applied here; an
entry at or below it is a duplicate (at-least-once delivery, exactly-once effect).
`ReplayError`: entries whose replay failed, for operators (they are retried).
`ParkedEntry`: an entry that failed every attempt on its own (a poison entry): kept
with its payload and last error, and passed over so that the rest of its origin's
stream applies; an operator replays it once its cause is fixed. The entries after
it that share one of its ordering keys (`keys`: its conversation, its users) are
parked untried as waiting behind it (`behind`), and applied after it.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class OutboxEntry(models.Model):
    kind = models.CharField(max_length=32)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    position = models.BigIntegerField(null=True, blank=True, unique=True)
    shipped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "wechat_core"
        indexes = [
            models.Index(
                fields=["id"], name="outbox_unshipped", condition=Q(shipped_at__isnull=True)
            )
        ]
        verbose_name_plural = "outbox entries"

    def __str__(self) -> str:
        return f"{self.kind} #{self.position or '-'}"


class ReplayPosition(models.Model):
    origin = models.CharField(max_length=16, primary_key=True)
    position = models.BigIntegerField(default=0)
    # When the last entry applied was written at its origin, and applied here.
    written_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "wechat_core"

    def __str__(self) -> str:
        return f"{self.origin}@{self.position}"


class ReplayError(models.Model):
    origin = models.CharField(max_length=16)
    position = models.BigIntegerField()
    kind = models.CharField(max_length=32)
    error = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        app_label = "wechat_core"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.origin}#{self.position} {self.kind}"


class ParkedEntry(models.Model):
    origin = models.CharField(max_length=16)
    position = models.BigIntegerField()
    kind = models.CharField(max_length=32)
    payload = models.JSONField()
    written_at = models.DateTimeField()
    error = models.TextField()
    parked_at = models.DateTimeField(auto_now_add=True)
    # Its ordering keys ("conversation:<id>", "user:<id>"): later entries sharing one
    # wait behind it.
    keys = models.JSONField(default=list, blank=True)
    # Waiting, untried, behind the parked entry at this position (of the same
    # origin); None: it failed on its own.
    behind = models.BigIntegerField(null=True, blank=True)

    class Meta:
        app_label = "wechat_core"
        ordering = ["origin", "position"]
        constraints = [
            models.UniqueConstraint(fields=["origin", "position"], name="parked_entry_once")
        ]
        verbose_name_plural = "parked entries"

    def __str__(self) -> str:
        return f"{self.origin}#{self.position} {self.kind} (parked)"
