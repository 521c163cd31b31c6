"""System accounts: users the service itself speaks as (the "monitoring" account that
writes alerts to operators' chats).

A system account holds a reserved WeChat ID (WECHAT_ID_RESERVED: nobody else may
claim it), cannot log in (no usable password), and acts through the same
services as anyone, with a ticket of its own device issued for one task and
revoked afterwards, so the data layer's ticket checks apply to it too.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction

from accounts.models import Platform, RevocationReason, User
from accounts.services.devices import device_register_login
from accounts.services.registration import user_create
from accounts.services.wechat_ids import wechat_id_allocate
from accounts.tickets import ticket_issue, ticket_verify, tickets_revoke
from accounts.types import DeviceInfo, VerifiedTicket

# One fixed device per system account, so tasks do not pile up devices.
_DEVICE_UUID = uuid.UUID("00000000-0000-4000-8000-000000005ace")


def system_account_ensure(*, wechat_id: str, nickname: str) -> User:
    """The system account with this (reserved) WeChat ID, created on first use."""
    existing = User.objects.filter(wechat_id__iexact=wechat_id).first()
    if existing is not None:
        return existing
    with transaction.atomic():
        user = user_create(
            phone=None,
            email=f"{wechat_id.lower()}@system.invalid",
            password=secrets.token_urlsafe(32),
            nickname=nickname,
        )
        user.set_unusable_password()
        user.discoverable_by_phone = False
        user.discoverable_by_email = False
        wechat_id_allocate(wechat_id=wechat_id, user=user)
        user.wechat_id = wechat_id
        user.save(
            update_fields=[
                "password",
                "discoverable_by_phone",
                "discoverable_by_email",
                "wechat_id",
            ]
        )
    return user


@contextmanager
def system_account_ticket(*, user: User) -> Iterator[VerifiedTicket]:
    """A ticket for the system account's device, revoked when the block ends."""
    info = DeviceInfo(
        platform=Platform.OTHER, client_version="1.0.0", name="system", device_uuid=_DEVICE_UUID
    )
    with transaction.atomic():
        device = device_register_login(user=user, info=info, ip=None)
        token, ticket = ticket_issue(user=user, device=device)
    try:
        yield ticket_verify(token=token)
    finally:
        tickets_revoke(ticket_ids=[ticket.pk], reason=RevocationReason.LOGOUT)
