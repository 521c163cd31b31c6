"""New accounts: by phone number and/or e-mail, with a password and a nickname.

Registration logs the new user in on the registering device. The user's home
data centre and campus are those of the process that registers them
(DESIGN.md §9); their data is written there.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.exceptions import AccountExists
from accounts.models import User
from accounts.replication import user_replicate
from accounts.services.devices import device_register_login
from accounts.tickets import ticket_issue
from accounts.types import DeviceInfo, LoginResult
from accounts.validators import clean_text, normalize_email, normalize_phone
from wechat_core.errors import InvalidInput, RateLimited
from wechat_core.ratelimit import window_hit
from wechat_core.services import topology_ensure_local
from wechat_core.sync.log import sequences_ensure

REGISTRATION_SCOPE = "register-ip"


def _field_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid input: {field}: {message}", details={"fields": {field: [message]}}
    )


def _normalized_identifiers(phone: str | None, email: str | None) -> tuple[str | None, str | None]:
    if not phone and not email:
        raise _field_error("phone", "Give a phone number, an e-mail address, or both.")
    try:
        normalized_phone = normalize_phone(phone) if phone else None
    except ValidationError as error:
        raise _field_error("phone", error.messages[0]) from error
    try:
        normalized_email = normalize_email(email) if email else None
    except ValidationError as error:
        raise _field_error("email", error.messages[0]) from error
    return normalized_phone, normalized_email


def user_create(
    *, phone: str | None, email: str | None, password: str, nickname: str, is_staff: bool = False
) -> User:
    """Validate and create an account homed in this process's data centre and campus.

    Raises InvalidInput for bad fields and AccountExists for a taken phone or e-mail.
    """
    phone, email = _normalized_identifiers(phone, email)
    try:
        nickname = clean_text(
            nickname, field="nickname", max_length=settings.NICKNAME_MAX_LENGTH, allow_empty=False
        )
    except ValidationError as error:
        raise _field_error("nickname", error.messages[0]) from error
    user = User(phone=phone, email=email, nickname=nickname, is_staff=is_staff)
    try:
        validate_password(password, user=user)
    except ValidationError as error:
        raise InvalidInput(
            f"Invalid input: password: {error.messages[0]}",
            details={"fields": {"password": error.messages}},
        ) from error
    user.set_password(password)
    placement = topology_ensure_local()
    user.home_datacenter_id = placement.datacenter
    user.home_campus_id = placement.campus
    try:
        with transaction.atomic():
            user.save()
            sequences_ensure([user.pk])
            user_replicate(user)
    except IntegrityError as error:
        field = "phone" if phone and User.objects.filter(phone=phone).exists() else "email"
        raise AccountExists(
            f"An account with this {field} already exists.",
            details={"fields": {field: ["Already registered."]}},
        ) from error
    return user


def service_identity_create(*, nickname: str) -> User:
    """A user row that speaks for a service (an official account) in conversations.

    It has no phone number, an address in the reserved `.invalid` domain and an
    unusable password, so it can never log in, and it is found by no contact search.
    """
    user = User(
        email=f"service-{uuid.uuid4().hex}@service.invalid",
        nickname=nickname.strip()[: settings.NICKNAME_MAX_LENGTH] or "Service",
        discoverable_by_phone=False,
        discoverable_by_wechat_id=False,
        discoverable_by_email=False,
    )
    user.set_unusable_password()
    placement = topology_ensure_local()
    user.home_datacenter_id = placement.datacenter
    user.home_campus_id = placement.campus
    with transaction.atomic():
        user.save()
        sequences_ensure([user.pk])
    return user


def service_identity_rename(*, user_id: int, nickname: str) -> None:
    name = nickname.strip()[: settings.NICKNAME_MAX_LENGTH] or "Service"
    User.objects.filter(pk=user_id, email__endswith="@service.invalid").update(nickname=name)


def user_register(
    *,
    phone: str | None,
    email: str | None,
    password: str,
    nickname: str,
    device: DeviceInfo,
    ip: str | None,
) -> LoginResult:
    """Create an account and log it in on the registering device."""
    if ip is not None:
        hits = window_hit(scope=REGISTRATION_SCOPE, identity=ip, window_seconds=3600)
        if hits.count > settings.REGISTRATIONS_PER_IP_PER_HOUR:
            raise RateLimited(
                "Too many registrations from your network address.", retry_after=hits.retry_after
            )
    with transaction.atomic():
        user = user_create(phone=phone, email=email, password=password, nickname=nickname)
        device_row = device_register_login(user=user, info=device, ip=ip)
        token, ticket = ticket_issue(user=user, device=device_row)
    return LoginResult(user=user, device=device_row, ticket=token, expires_at=ticket.expires_at)
