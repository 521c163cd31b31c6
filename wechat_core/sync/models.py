"""Each user's sync sequence and log (DESIGN.md §4).

A device syncs by asking for the entries after the last seq it holds. The
tables keep the names they had when messaging owned them (`db_table`): moving
the models here moved no data.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class UserSequence(models.Model):
    """The user's sync sequence: the seq of the newest entry in their log."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    last_seq = models.BigIntegerField(default=0)

    class Meta:
        app_label = "wechat_core"
        db_table = "messaging_usersequence"

    def __str__(self) -> str:
        return f"{self.user_id}@{self.last_seq}"


class EntryKind(models.TextChoices):
    """The kinds of entry a device reads (docs/protocol.md). One list for all apps:
    it is the wire vocabulary, and the column's choices."""

    MESSAGE = "message", "A conversation event"
    READ = "read", "Own read position moved"
    CONVERSATION = "conversation", "Conversation joined or changed"
    CONTACT = "contact", "Contacts changed"
    FLAG = "flag", "Feature flags changed"
    # A message's state changed for this user (payload: the owning app's fields,
    # e.g. a red packet opened, all taken or expired); the message is not resent.
    MESSAGE_UPDATE = "message_update", "A message's state changed"
    # A shake activity's sponsor assets changed (payload: activity, version): the
    # client reads the new manifest in idle time (docs/shake.md "Sponsor assets").
    SHAKE_ASSETS = "shake_assets", "A shake activity's asset manifest changed"


class SyncEntry(models.Model):
    """One change a user's devices must learn, at `seq` in that user's log."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    conversation_id = models.BigIntegerField(null=True, blank=True)
    message_id = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "wechat_core"
        db_table = "messaging_syncentry"
        constraints = [models.UniqueConstraint(fields=["user", "seq"], name="sync_entry_user_seq")]

    def __str__(self) -> str:
        return f"{self.user_id}#{self.seq} {self.kind}"
