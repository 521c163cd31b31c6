"""What operators do to accounts from the admin site and management commands.

Operators are trusted staff acting on other users' data, so these functions do
not take a user's ticket; the admin site only lets staff reach them.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone

from accounts.models import Device, RevocationReason, User
from accounts.tickets import tickets_revoke, tickets_revoke_for_device, tickets_revoke_for_user

OPERATORS_GROUP = "Operators"
OPERATOR_APPS = (
    "accounts",
    "wechat_core",
    "monitoring",
    "grayrelease",
    "wallet",
    "redpackets",
    "shake",
)


def operators_group_ensure() -> Group:
    """The Operators group, holding every permission on the operator-facing apps."""
    group, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    group.permissions.set(Permission.objects.filter(content_type__app_label__in=OPERATOR_APPS))
    return group


@transaction.atomic
def operator_grant(*, user: User, superuser: bool = False) -> User:
    user.is_staff = True
    user.is_superuser = user.is_superuser or superuser
    user.save(update_fields=["is_staff", "is_superuser"])
    user.groups.add(operators_group_ensure())
    return user


@transaction.atomic
def operator_revoke_user_tickets(*, user_ids: list[int]) -> int:
    return sum(
        tickets_revoke_for_user(user_id=user_id, reason=RevocationReason.OPERATOR)
        for user_id in user_ids
    )


@transaction.atomic
def operator_revoke_device_tickets(*, device_ids: list[int]) -> int:
    count = sum(
        tickets_revoke_for_device(device_id=device_id, reason=RevocationReason.OPERATOR)
        for device_id in device_ids
    )
    Device.objects.filter(pk__in=device_ids, removed_at__isnull=True).update(
        removed_at=timezone.now()
    )
    return count


@transaction.atomic
def operator_revoke_tickets(*, ticket_ids: list[int]) -> int:
    return tickets_revoke(ticket_ids=ticket_ids, reason=RevocationReason.OPERATOR)


@transaction.atomic
def operator_set_active(*, user: User, active: bool) -> User:
    """Enable or disable an account; disabling logs it out everywhere."""
    user.is_active = active
    user.save(update_fields=["is_active"])
    if not active:
        tickets_revoke_for_user(user_id=user.pk, reason=RevocationReason.OPERATOR)
    return user
