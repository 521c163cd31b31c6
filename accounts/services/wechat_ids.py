"""WeChat IDs: chosen once, unique ignoring case across every data centre.

`wechat_id_allocate` stands for the global allocation service of DESIGN.md §9
(seed 000: 全局唯一的微信号申请服务): every data centre asks it, and it is the
only code that writes the registry. Uniqueness is the registry's primary key on
the lower-cased ID, so concurrent claims are decided by the database: exactly
one insert wins, the others fail.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.exceptions import UserNotFound, WeChatIdAlreadySet, WeChatIdTaken
from accounts.models import User, WeChatIdClaim
from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from accounts.validators import validate_wechat_id
from wechat_core.errors import InvalidInput


def wechat_id_allocate(*, wechat_id: str, user: User) -> WeChatIdClaim:
    """Reserve `wechat_id` for `user` in the global registry, or raise WeChatIdTaken."""
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
    return user
