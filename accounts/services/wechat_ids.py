"""WeChat IDs: chosen once, unique ignoring case across every data centre.

`wechat_id_allocate` stands for the global allocation service of DESIGN.md §9
(seed 000: 全局唯一的微信号申请服务): every data centre asks it, and it is the
only code that writes the registry. Uniqueness is the registry's primary key on
the lower-cased ID, so concurrent claims are decided by the database: exactly
one insert wins, the others fail.

With several data centres (issue 17) one of them holds the registry (its
WECHAT_ID_AUTHORITY_URL is empty); the others set WECHAT_ID_AUTHORITY_URL to it
and claim through its internal endpoint (`POST /api/internal/wechat-ids`, signed
with DATACENTER_SECRET). When it does not answer, claiming fails with 503
`wechat_id_authority_unreachable` and nothing else is affected.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.exceptions import UserNotFound, WeChatIdAlreadySet, WeChatIdTaken
from accounts.models import User, WeChatIdClaim
from accounts.replication import user_replicate
from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from accounts.validators import validate_wechat_id
from wechat_core.errors import InvalidInput, PermissionRefused, ServiceError


class WeChatIdAuthorityUnreachable(ServiceError):
    status = 503
    code = "wechat_id_authority_unreachable"
    default_message = (
        "The WeChat ID service cannot be reached; try again later. Nothing else is affected."
    )


def authority_signature(body: bytes) -> str:
    """How the data centres sign their calls to the allocation authority."""
    return hmac.new(settings.DATACENTER_SECRET.encode(), body, hashlib.sha256).hexdigest()


def _allocate_at_authority(*, wechat_id: str, user: User) -> None:
    body = json.dumps(
        {"wechat_id": wechat_id, "user_id": user.pk, "datacenter": user.home_datacenter_id}
    ).encode()
    try:
        response = httpx.post(
            f"{settings.WECHAT_ID_AUTHORITY_URL}/api/internal/wechat-ids",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Datacenter-Signature": authority_signature(body),
            },
            timeout=settings.WECHAT_ID_AUTHORITY_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as error:
        raise WeChatIdAuthorityUnreachable() from error
    if response.status_code in (200, 201):
        return
    code = ""
    with contextlib.suppress(ValueError):
        code = str(response.json().get("code", ""))
    if code == WeChatIdTaken.code:
        raise WeChatIdTaken(details={"wechat_id": wechat_id})
    if code == WeChatIdAlreadySet.code:
        raise WeChatIdAlreadySet()
    raise WeChatIdAuthorityUnreachable(details={"status": response.status_code, "code": code})


def wechat_id_allocate(*, wechat_id: str, user: User) -> WeChatIdClaim | None:
    """Reserve `wechat_id` for `user` in the global registry, or raise WeChatIdTaken.
    Through the authority when this data centre is not it (then None)."""
    if settings.WECHAT_ID_AUTHORITY_URL:
        _allocate_at_authority(wechat_id=wechat_id, user=user)
        return None
    try:
        with transaction.atomic():
            return WeChatIdClaim.objects.create(
                normalized=wechat_id.lower(),
                wechat_id=wechat_id,
                user=user,
                datacenter=user.home_datacenter_id,
            )
    except IntegrityError as error:
        if WeChatIdClaim.objects.filter(user=user).exists():
            raise WeChatIdAlreadySet() from error
        raise WeChatIdTaken(details={"wechat_id": wechat_id}) from error


@transaction.atomic
def wechat_id_claim(*, ticket: VerifiedTicket, user_id: int, wechat_id: str) -> User:
    """Set the user's WeChat ID, once."""
    ticket_require(ticket, user_id=user_id)
    try:
        validate_wechat_id(wechat_id)
    except ValidationError as error:
        raise InvalidInput(
            f"Invalid input: wechat_id: {error.messages[0]}",
            details={"fields": {"wechat_id": error.messages}},
        ) from error
    user = User.objects.select_for_update(no_key=True).filter(pk=user_id).first()
    if user is None:
        raise UserNotFound()
    if user.wechat_id:
        raise WeChatIdAlreadySet(details={"wechat_id": user.wechat_id})
    wechat_id_allocate(wechat_id=wechat_id, user=user)
    user.wechat_id = wechat_id
    user.save(update_fields=["wechat_id"])
    user_replicate(user)
    return user


def wechat_id_allocate_for_peer(*, body: bytes, signature: str) -> WeChatIdClaim:
    """The authority's side of a claim from another data centre (signed)."""
    if not settings.DATACENTER_SECRET or not hmac.compare_digest(
        authority_signature(body), signature
    ):
        raise PermissionRefused("Unsigned call between data centres.")
    try:
        data = json.loads(body)
        wechat_id, user_id = str(data["wechat_id"]), int(data["user_id"])
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidInput("wechat_id and user_id are required.") from error
    user = User.objects.filter(pk=user_id).first()
    if user is None:  # not replicated here yet: the caller retries later
        raise UserNotFound()
    return wechat_id_allocate(wechat_id=wechat_id, user=user) or WeChatIdClaim()
