"""Following and unfollowing accounts, menu taps, and what a follower's message to
an account sets off (the messaging policy of `official` conversations)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from messaging.exceptions import InvalidContent
from messaging.services.conversations import official_conversation_open
from messaging.services.policies import SentMessage
from messaging.types import OutgoingContent
from publicplatform import identifiers
from publicplatform.exceptions import AccountNotFound, NotAFollower, UnknownMenuButton
from publicplatform.models import Follower, OfficialAccount
from publicplatform.services import webhooks
from publicplatform.services.menus import menu_find
from wechat_core.transactions import enqueue_on_commit


def _account(account_id: int) -> OfficialAccount:
    account = OfficialAccount.objects.filter(pk=account_id, is_active=True).first()
    if account is None:
        raise AccountNotFound()
    return account


def _greet_on_commit(follower: Follower) -> None:
    enqueue_on_commit(
        "publicplatform.tasks.greet_follower",
        follower.pk,
        int(timezone.now().timestamp()),
        name="official_greeting",
    )


def account_follow(*, ticket: VerifiedTicket, user_id: int, account_id: int) -> Follower:
    """Follow an account (again): the chat and openid are kept from any earlier
    follow. The developer's server gets `subscribe`; an account without one greets."""
    ticket_require(ticket, user_id=user_id)
    account = _account(account_id)
    try:
        with transaction.atomic():
            return _follow(ticket, user_id, account)
    except IntegrityError:  # followed at the same moment from another device
        with transaction.atomic():
            return _follow(ticket, user_id, account)


def _follow(ticket: VerifiedTicket, user_id: int, account: OfficialAccount) -> Follower:
    now = timezone.now()
    follower = (
        Follower.objects.select_for_update(no_key=True)
        .filter(account=account, user_id=user_id)
        .first()
    )
    if follower is not None and follower.subscribed:
        return follower
    if follower is None:
        conversation = official_conversation_open(
            ticket=ticket,
            user_id=user_id,
            service_user_id=account.service_user_id,
            name=account.name,
        )
        follower = Follower.objects.create(
            account=account,
            user_id=user_id,
            conversation_id=conversation.pk,
            openid=identifiers.openid_for(account_id=account.pk, user_id=user_id),
            subscribed_at=now,
            last_interaction_at=now,
        )
    else:
        follower.subscribed, follower.subscribed_at, follower.unsubscribed_at = True, now, None
        follower.last_interaction_at, follower.custom_sent = now, 0
        follower.save(
            update_fields=[
                "subscribed",
                "subscribed_at",
                "unsubscribed_at",
                "last_interaction_at",
                "custom_sent",
            ]
        )
    if account.server_url:
        webhooks.delivery_create_for_event(
            account=account, follower=follower, event="subscribe", fields=[("EventKey", "")]
        )
    elif account.greeting:
        _greet_on_commit(follower)
    return follower


@transaction.atomic
def account_unfollow(*, ticket: VerifiedTicket, user_id: int, account_id: int) -> Follower:
    ticket_require(ticket, user_id=user_id)
    account = _account(account_id)
    follower = (
        Follower.objects.select_for_update(no_key=True)
        .filter(account=account, user_id=user_id, subscribed=True)
        .first()
    )
    if follower is None:
        raise NotAFollower("You do not follow this account.")
    follower.subscribed, follower.unsubscribed_at = False, timezone.now()
    follower.save(update_fields=["subscribed", "unsubscribed_at"])
    if account.server_url:
        webhooks.delivery_create_for_event(
            account=account, follower=follower, event="unsubscribe", fields=[("EventKey", "")]
        )
    return follower


def _subscribed(account_id: int, user_id: int) -> Follower:
    follower = (
        Follower.objects.select_for_update(no_key=True)
        .filter(account_id=account_id, user_id=user_id, subscribed=True)
        .select_related("account")
        .first()
    )
    if follower is None:
        raise NotAFollower("Follow the account first.")
    return follower


def _touch(follower: Follower) -> None:
    """A follower's interaction opens the 48-hour customer-service window anew."""
    follower.last_interaction_at, follower.custom_sent = timezone.now(), 0
    follower.save(update_fields=["last_interaction_at", "custom_sent"])


@transaction.atomic
def menu_tap(
    *, ticket: VerifiedTicket, user_id: int, account_id: int, kind: str, value: str
) -> str:
    """A tap on a menu button: `click` sends CLICK with the key, `view` sends VIEW
    with the URL (which the client opens). Only buttons of the current menu count.
    Returns the URL to open for `view`, else ""."""
    ticket_require(ticket, user_id=user_id)
    follower = _subscribed(account_id, user_id)
    account = follower.account
    button = menu_find(menu=account.menu, kind=kind, value=value)
    if button is None:
        raise UnknownMenuButton()
    _touch(follower)
    if account.server_url:
        event = "CLICK" if kind == "click" else "VIEW"
        fields: list[tuple[str, str | int]] = [("EventKey", value)]
        if kind == "view":
            fields.append(("MenuId", str(account.pk)))
        webhooks.delivery_create_for_event(
            account=account, follower=follower, event=event, fields=fields
        )
    elif kind == "click":
        key = f"ppk-{follower.pk}-{int(timezone.now().timestamp() * 1000)}"
        enqueue_on_commit(
            "publicplatform.tasks.auto_reply", follower.pk, key, value, name="auto_reply"
        )
    return value if kind == "view" else ""


# --- The policy of `official` conversations (messaging.services.policies) -------------


class OfficialConversationPolicy:
    """Only a current follower writes to an account, and only text; each message
    goes to the developer's server, or to the keyword replies."""

    def before_send(
        self, *, user_id: int, conversation_id: int, content: OutgoingContent
    ) -> Follower:
        # Locked here, after the chat (messaging locks it first), and read once for
        # the whole send: after_send gets it back. custom_send locks in this order too.
        follower = (
            Follower.objects.select_for_update(no_key=True, of=("self",))
            .filter(conversation_id=conversation_id, user_id=user_id)
            .select_related("account")
            .first()
        )
        if follower is None or not follower.subscribed:
            raise NotAFollower("Follow the account again to write to it.")
        if not follower.account.is_active:
            raise AccountNotFound("This account no longer takes messages.")
        if content.kind != "text":
            raise InvalidContent("Official accounts accept text messages here.")
        return follower

    def after_send(self, *, sent: SentMessage, checked: Follower) -> None:
        follower = checked
        _touch(follower)
        account = follower.account
        if account.server_url:
            webhooks.delivery_create_for_text(
                account=account,
                follower=follower,
                message_id=sent.message_id,
                text=sent.text,
                created_at=sent.created_at,
            )
            return
        key, text = f"ppa-{sent.message_id}", sent.text
        enqueue_on_commit(
            "publicplatform.tasks.auto_reply", follower.pk, key, text, name="auto_reply"
        )
