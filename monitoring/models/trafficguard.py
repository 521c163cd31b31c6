"""Traffic-guard blocks (seed 001 §11, 偷流量): a client told to stop for a while."""

from __future__ import annotations

from django.db import models


class GuardBlock(models.Model):
    # "device:<id>" or "ip:<address>"; never a ticket.
    identity = models.CharField(max_length=80)
    endpoint = models.CharField(max_length=160)  # "GET api/..." or "ws sync"
    repeats = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    until = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["until"], name="guardblock_by_until")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.identity} on {self.endpoint} until {self.until:%H:%M:%S}"
