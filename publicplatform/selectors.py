"""Reads of the official accounts platform: what users find and follow, what
developers see in the console and read through /cgi-bin/."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Prefetch, Q, QuerySet

from accounts.tickets import ticket_require
from accounts.types import VerifiedTicket
from publicplatform import identifiers
from publicplatform.exceptions import AccountNotFound, InvalidArgs, InvalidOpenid, MenuNotFound
from publicplatform.models import (
    AutoReply,
    Follower,
    OfficialAccount,
    Pool,
    PoolMember,
    WebhookAttempt,
    WebhookDelivery,
)
from wechat_core.errors import RateLimited
from wechat_core.ratelimit import window_hit

SEARCH_SCOPE = "pp-search"
SEARCH_LIMIT = 20
_random = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class AccountCard:
    """An account as a user sees it, with their relation to it."""

    id: int
    name: str
    description: str
    original_id: str
    is_verified: bool
    following: bool
    conversation_id: int | None
    menu: list[dict[str, Any]]
    service_user_id: int
    pool: str | None = None


def _card(
    account: OfficialAccount, follower: Follower | None, pool: str | None = None
) -> AccountCard:
    following = follower is not None and follower.subscribed
    return AccountCard(
        account.pk,
        account.name,
        account.description,
        account.original_id,
        account.is_verified,
        following,
        follower.conversation_id if follower else None,
        account.menu if following else [],
        account.service_user_id,
        pool,
    )


def _cards(
    user_id: int, accounts: Sequence[OfficialAccount], pool: str | None = None
) -> list[AccountCard]:
    followers = {
        f.account_id: f
        for f in Follower.objects.filter(user_id=user_id, account__in=[a.pk for a in accounts])
    }
    return [_card(a, followers.get(a.pk), pool) for a in accounts]


def pool_pick(members: Sequence[PoolMember]) -> PoolMember | None:
    """One enabled member with a positive weight, chosen with probability
    weight / total (seed 000: `szdy` → one of `szdy01…szdy10`)."""
    eligible = [m for m in members if m.enabled and m.weight > 0]
    if not eligible:
        return None
    return _random.choices(eligible, weights=[m.weight for m in eligible])[0]


def _pool_member(query: str) -> tuple[Pool, OfficialAccount] | None:
    active = PoolMember.objects.select_related("account").filter(account__is_active=True)
    pool = (
        Pool.objects.filter(name__iexact=query, is_active=True)
        .prefetch_related(Prefetch("members", queryset=active))
        .first()
    )
    if pool is None:
        return None
    chosen = pool_pick(list(pool.members.all()))
    return (pool, chosen.account) if chosen else None


def account_search(*, ticket: VerifiedTicket, user_id: int, query: str) -> list[AccountCard]:
    """A pool's name gives one of its members at random; otherwise accounts whose
    name contains the query, or whose appid or original id it is."""
    ticket_require(ticket, user_id=user_id)
    hits = window_hit(scope=SEARCH_SCOPE, identity=str(user_id), window_seconds=60)
    if hits.count > settings.PUBLICPLATFORM_SEARCHES_PER_MINUTE:
        raise RateLimited(
            f"At most {settings.PUBLICPLATFORM_SEARCHES_PER_MINUTE} searches a minute.",
            retry_after=hits.retry_after,
        )
    query = " ".join(query.split())[:64]
    if not query:
        return []
    pooled = _pool_member(query)
    if pooled is not None:
        return _cards(user_id, [pooled[1]], pool=pooled[0].name)
    matches = OfficialAccount.objects.filter(is_active=True).filter(
        Q(name__icontains=query) | Q(appid__iexact=query) | Q(original_id__iexact=query)
    )
    return _cards(user_id, list(matches.order_by("-is_verified", "name", "id")[:SEARCH_LIMIT]))


def account_card(*, ticket: VerifiedTicket, user_id: int, account_id: int) -> AccountCard:
    ticket_require(ticket, user_id=user_id)
    account = OfficialAccount.objects.filter(pk=account_id, is_active=True).first()
    if account is None:
        raise AccountNotFound()
    return _cards(user_id, [account])[0]


def account_card_for_conversation(
    *, ticket: VerifiedTicket, user_id: int, conversation_id: int
) -> AccountCard:
    """The account behind one of the user's official chats (the client's menu bar)."""
    ticket_require(ticket, user_id=user_id)
    follower = (
        Follower.objects.select_related("account")
        .filter(user_id=user_id, conversation_id=conversation_id)
        .first()
    )
    if follower is None:
        raise AccountNotFound()
    return _card(follower.account, follower)


def followed_accounts(*, ticket: VerifiedTicket, user_id: int) -> list[AccountCard]:
    ticket_require(ticket, user_id=user_id)
    followers = (
        Follower.objects.select_related("account")
        .filter(user_id=user_id, subscribed=True, account__is_active=True)
        .order_by("account__name", "account_id")
    )
    return [_card(f.account, f) for f in followers]


# --- Developers: the console ---------------------------------------------------------------


def access_account(*, owner_id: int, account_id: int) -> OfficialAccount:
    """An account the developer owns (anyone else's is "not found")."""
    account = OfficialAccount.objects.filter(pk=account_id, owner_id=owner_id).first()
    if account is None:
        raise AccountNotFound()
    return account


def developer_accounts(*, owner_id: int) -> QuerySet[OfficialAccount]:
    return OfficialAccount.objects.filter(owner_id=owner_id).order_by("name", "id")


def delivery_log(*, account: OfficialAccount, limit: int = 50) -> list[WebhookDelivery]:
    """The newest pushes with their attempts, for the console's delivery log."""
    attempts = Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("number"))
    return list(
        WebhookDelivery.objects.filter(account=account)
        .select_related("follower")
        .prefetch_related(attempts)
        .order_by("-id")[:limit]
    )


def autoreply_rules(*, account: OfficialAccount) -> QuerySet[AutoReply]:
    """The account's keyword rules in the order they are tried."""
    return AutoReply.objects.filter(account=account).order_by("position", "id")


def follower_count(*, account: OfficialAccount) -> int:
    return Follower.objects.filter(account=account, subscribed=True).count()


# --- Developers: /cgi-bin/user/… (reference §4.5) ------------------------------------------


def _openid(openid: Any) -> str:
    if not isinstance(openid, str) or not identifiers.OPENID_RE.fullmatch(openid):
        raise InvalidOpenid("invalid openid: 28 characters of letters, digits, _ and -")
    return openid


def _info(account: OfficialAccount, follower: Follower, lang: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "subscribe": 1 if follower.subscribed else 0,
        "openid": follower.openid,
    }
    if account.open_platform_id:
        info["unionid"] = identifiers.unionid_for(
            open_platform_id=account.open_platform_id, user_id=follower.user_id
        )
    if not follower.subscribed:
        return info
    return info | {
        "language": lang if lang in ("zh_CN", "zh_TW", "en") else "zh_CN",
        "subscribe_time": int(follower.subscribed_at.timestamp()),
        "remark": follower.remark,
        "groupid": 0,
        "tagid_list": [],
        "subscribe_scene": "ADD_SCENE_SEARCH",
        "qr_scene": 0,
        "qr_scene_str": "",
    }


def follower_info(*, account: OfficialAccount, openid: Any, lang: str = "zh_CN") -> dict[str, Any]:
    """user/info: only `subscribe` and `openid` (+ `unionid`) once unfollowed."""
    follower = Follower.objects.filter(account=account, openid=_openid(openid)).first()
    if follower is None:
        raise InvalidOpenid()
    return _info(account, follower, lang)


def followers_info(*, account: OfficialAccount, user_list: Any) -> list[dict[str, Any]]:
    """user/info/batchget: up to PUBLICPLATFORM_BATCHGET_MAX {openid, lang} items,
    read in one query; any openid that is not a follower's refuses the batch."""
    limit = settings.PUBLICPLATFORM_BATCHGET_MAX
    if not isinstance(user_list, list) or not 1 <= len(user_list) <= limit:
        raise InvalidArgs(f"invalid args: user_list has 1-{limit} items")
    items = [item if isinstance(item, dict) else {} for item in user_list]
    wanted = [(_openid(item.get("openid")), str(item.get("lang", "zh_CN"))) for item in items]
    found = {
        f.openid: f
        for f in Follower.objects.filter(account=account, openid__in=[o for o, _ in wanted])
    }
    if any(openid not in found for openid, _ in wanted):
        raise InvalidOpenid()
    return [_info(account, found[openid], lang) for openid, lang in wanted]


def menu_get(*, account: OfficialAccount) -> list[dict[str, Any]]:
    if not account.menu:
        raise MenuNotFound()
    return list(account.menu)


@dataclass(frozen=True, slots=True)
class FollowerPage:
    total: int
    openids: list[str]
    next_openid: str


def followers_page(*, account: OfficialAccount, next_openid: str) -> FollowerPage:
    """Followers in openid order after `next_openid`; past the end, an empty page
    whose next_openid is "" (wechatpy's iter_followers stops on it)."""
    followers = Follower.objects.filter(account=account, subscribed=True)
    page = followers.order_by("openid")
    if next_openid:
        page = page.filter(openid__gt=next_openid)
    openids = list(page.values_list("openid", flat=True)[: settings.PUBLICPLATFORM_USER_GET_PAGE])
    return FollowerPage(followers.count(), openids, openids[-1] if openids else "")
