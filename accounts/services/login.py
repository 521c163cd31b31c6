"""Login by phone or e-mail and password, with brute-force protection.

Failed attempts are counted per account (the normalised identifier, whether or
not such an account exists, so the lock reveals nothing) and per client IP.
Reaching either limit locks that key for LOGIN_LOCKOUT_SECONDS; a locked key is
refused before the password is even checked, with a retry-after.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from accounts.exceptions import AccountDisabled, InvalidCredentials, LoginLocked
from accounts.models import Platform, User
from accounts.services.devices import device_register_login
from accounts.tickets import ticket_issue
from accounts.types import DeviceInfo, LoginResult
from accounts.validators import normalize_email, normalize_phone
from wechat_core.datacenters import require_home
from wechat_core.errors import ServiceError
from wechat_core.metrics import counter
from wechat_core.ratelimit import lock_remaining, lock_set, window_hit, window_reset

LOGINS = counter(
    "accounts_logins_total",
    "Login attempts by outcome (ok or the error code) and platform.",
    ["outcome", "platform"],
    process_labels=True,
)
ACCOUNT_SCOPE = "login-account"
IP_SCOPE = "login-ip"


def _account_key(identifier: str) -> str:
    """The identifier as the account would store it, or as typed if it cannot be parsed."""
    raw = identifier.strip()
    try:
        return normalize_email(raw) if "@" in raw else normalize_phone(raw)
    except ValidationError:
        return raw.lower()


def _find_user(account_key: str) -> User | None:
    field = "email" if "@" in account_key else "phone"
    return User.objects.filter(**{field: account_key}).first()


def _refuse_if_locked(account_key: str, ip: str | None) -> None:
    for scope, identity in ((ACCOUNT_SCOPE, account_key), (IP_SCOPE, ip)):
        if identity is None:
            continue
        remaining = lock_remaining(scope=scope, identity=identity)
        if remaining > 0:
            raise LoginLocked(_lock_message(scope), retry_after=remaining, details={"scope": scope})


def _lock_message(scope: str) -> str:
    # The wait itself is in details.retry_after (and the Retry-After header).
    if scope == ACCOUNT_SCOPE:
        return gettext("Too many failed logins for this account; wait before trying again.")
    return gettext("Too many failed logins for your network address; wait before trying again.")


def _record_failure(account_key: str, ip: str | None) -> int:
    """Count a failure against the account and the IP; lock and raise when either
    reaches its limit. Returns the attempts the account has left."""
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    limits = [(ACCOUNT_SCOPE, account_key, settings.LOGIN_ACCOUNT_MAX_FAILURES)]
    if ip is not None:
        limits.append((IP_SCOPE, ip, settings.LOGIN_IP_MAX_FAILURES))
    counts = [
        window_hit(scope=scope, identity=identity, window_seconds=window).count
        for scope, identity, _ in limits
    ]
    for (scope, identity, limit), failures in zip(limits, counts, strict=True):
        if failures >= limit:
            seconds = lock_set(
                scope=scope, identity=identity, seconds=settings.LOGIN_LOCKOUT_SECONDS
            )
            window_reset(scope=scope, identity=identity, window_seconds=window)
            raise LoginLocked(_lock_message(scope), retry_after=seconds, details={"scope": scope})
    return max(0, settings.LOGIN_ACCOUNT_MAX_FAILURES - counts[0])


def credentials_check(*, identifier: str, password: str, ip: str | None) -> User:
    """The user these credentials belong to, or InvalidCredentials / LoginLocked."""
    account_key = _account_key(identifier)
    _refuse_if_locked(account_key, ip)
    user = _find_user(account_key)
    if user is None:
        make_password(password)  # spend the same time as a real check
    elif user.check_password(password):
        if not user.is_active:
            raise AccountDisabled()
        # The password hash is replicated with the user: the right password at the
        # wrong data centre is told where home is, a wrong one learns nothing.
        require_home(user.home_datacenter_id)
        window_reset(
            scope=ACCOUNT_SCOPE,
            identity=account_key,
            window_seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS,
        )
        return user
    attempts_left = _record_failure(account_key, ip)
    raise InvalidCredentials(details={"attempts_left": attempts_left})


def login(*, identifier: str, password: str, device: DeviceInfo, ip: str | None) -> LoginResult:
    """Check credentials, register the device and issue its ticket."""
    platform = device.platform if device.platform in Platform.values else "other"
    try:
        user = credentials_check(identifier=identifier, password=password, ip=ip)
    except ServiceError as error:
        LOGINS.inc(error.code, platform)
        raise
    LOGINS.inc("ok", platform)
    with transaction.atomic():
        device_row = device_register_login(user=user, info=device, ip=ip)
        token, ticket = ticket_issue(user=user, device=device_row)
    return LoginResult(user=user, device=device_row, ticket=token, expires_at=ticket.expires_at)
