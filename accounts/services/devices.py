"""The devices a user logged in from: registered at login, listed, removed."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.exceptions import DeviceNotFound
from accounts.models import Device, RevocationReason, User
from accounts.tickets import ticket_require, tickets_revoke_for_device, tickets_revoke_for_user
from accounts.types import DeviceInfo, VerifiedTicket

# last_seen_at is written at most this often per device and process.
TOUCH_INTERVAL_SECONDS = 60.0
_touched: dict[int, float] = {}
_touched_lock = threading.Lock()


def device_register_login(*, user: User, info: DeviceInfo, ip: str | None) -> Device:
    """Find or create the device for a login (call inside the login transaction).

    A device that logs in again keeps its row and loses its older tickets, so
    each device holds one live ticket at a time.
    """
    now = timezone.now()
    device = None
    if info.device_uuid is not None:
        device = (
            Device.objects.select_for_update(no_key=True)
            .filter(user=user, device_uuid=info.device_uuid)
            .first()
        )
    if device is not None:
        tickets_revoke_for_device(device_id=device.pk, reason=RevocationReason.RELOGIN)
        device.platform, device.client_version, device.name = (
            info.platform,
            info.client_version,
            info.name,
        )
        device.last_login_at = device.last_seen_at = now
        device.last_ip, device.removed_at = ip, None
        device.save(
            update_fields=[
                "platform",
                "client_version",
                "name",
                "last_login_at",
                "last_seen_at",
                "last_ip",
                "removed_at",
            ]
        )
        return device
    device = Device.objects.create(
        user=user,
        platform=info.platform,
        client_version=info.client_version,
        name=info.name,
        last_ip=ip,
        **({"device_uuid": info.device_uuid} if info.device_uuid else {}),
    )
    _enforce_device_limit(user=user)
    return device


def _enforce_device_limit(*, user: User) -> None:
    active = Device.objects.filter(user=user, removed_at__isnull=True).order_by(
        "-last_seen_at", "-id"
    )
    for stale in active[settings.DEVICES_PER_USER_MAX :]:
        tickets_revoke_for_device(device_id=stale.pk, reason=RevocationReason.DEVICE_LIMIT)
        stale.removed_at = timezone.now()
        stale.save(update_fields=["removed_at"])


@transaction.atomic
def device_remove(*, ticket: VerifiedTicket, user_id: int, device_id: int) -> None:
    """Log a device out: revoke its tickets and drop it from the list."""
    ticket_require(ticket, user_id=user_id)
    device = Device.objects.filter(pk=device_id, user_id=user_id, removed_at__isnull=True).first()
    if device is None:
        raise DeviceNotFound()
    tickets_revoke_for_device(device_id=device.pk, reason=RevocationReason.DEVICE_REMOVED)
    device.removed_at = timezone.now()
    device.save(update_fields=["removed_at"])


@transaction.atomic
def logout(*, ticket: VerifiedTicket, user_id: int) -> None:
    """Log out the device this ticket belongs to."""
    ticket_require(ticket, user_id=user_id)
    tickets_revoke_for_device(device_id=ticket.device_id, reason=RevocationReason.LOGOUT)
    Device.objects.filter(pk=ticket.device_id).update(removed_at=timezone.now())


@transaction.atomic
def logout_everywhere(*, ticket: VerifiedTicket, user_id: int) -> int:
    """Revoke every ticket of the user; returns how many were live."""
    ticket_require(ticket, user_id=user_id)
    count = tickets_revoke_for_user(user_id=user_id, reason=RevocationReason.LOGOUT_ALL)
    Device.objects.filter(user_id=user_id, removed_at__isnull=True).update(
        removed_at=timezone.now()
    )
    return count


def device_touch_due(*, device_id: int) -> bool:
    """Whether device_touch would write the device's "last seen" now (a query)."""
    with _touched_lock:
        last = _touched.get(device_id)
    return last is None or time.monotonic() - last >= TOUCH_INTERVAL_SECONDS


def device_touch(*, ticket: VerifiedTicket, ip: str | None) -> None:
    """Record that the device was seen, at most once a minute per process."""
    now = time.monotonic()
    with _touched_lock:
        if now - _touched.get(ticket.device_id, float("-inf")) < TOUCH_INTERVAL_SECONDS:
            return
        if len(_touched) > 100_000:
            _touched.clear()
        _touched[ticket.device_id] = now
    Device.objects.filter(pk=ticket.device_id).update(last_seen_at=timezone.now(), last_ip=ip)
