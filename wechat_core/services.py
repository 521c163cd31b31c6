"""Writes to the topology: ensure this process's place exists; save campuses and
flip their blocking switch, audited and published to every process."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from wechat_core.errors import NotFound
from wechat_core.models import Campus, CampusBlockEvent, DataCenter
from wechat_core.selectors import campus_snapshot, local_placement
from wechat_core.types import Placement


def topology_ensure_local() -> Placement:
    """Make sure the data centre and campus named in settings exist (idempotent)."""
    placement = local_placement()
    datacenter, _ = DataCenter.objects.get_or_create(
        code=placement.datacenter, defaults={"name": placement.datacenter.upper()}
    )
    _, created = Campus.objects.get_or_create(
        code=placement.campus,
        defaults={"datacenter": datacenter, "name": placement.campus.upper()},
    )
    if created:
        campus_snapshot.invalidate_on_commit()
    return placement


@transaction.atomic
def campus_save(*, campus: Campus, actor: AbstractBaseUser | None, reason: str = "") -> Campus:
    """Create or update a campus. A change of `blocked` is stamped and audited."""
    previous = Campus.objects.select_for_update(no_key=True).filter(code=campus.code).first()
    was_blocked = previous.blocked if previous is not None else False
    if campus.blocked != was_blocked:
        campus.blocked_changed_at = timezone.now()
        campus.blocked_changed_by = actor if actor is not None and actor.pk else None  # type: ignore[assignment]
    campus.save()
    if campus.blocked != was_blocked:
        CampusBlockEvent.objects.create(
            campus=campus,
            blocked=campus.blocked,
            actor=campus.blocked_changed_by,
            actor_label=str(actor) if actor is not None else "system",
            reason=reason[:200],
        )
    campus_snapshot.invalidate_on_commit()
    return campus


def campus_set_blocked(
    *, code: str, blocked: bool, actor: AbstractBaseUser | None, reason: str = ""
) -> Campus:
    """Block or unblock a whole campus."""
    campus = Campus.objects.filter(code=code).first()
    if campus is None:
        raise NotFound(f"No campus {code!r}.")
    campus.blocked = blocked
    return campus_save(campus=campus, actor=actor, reason=reason)
