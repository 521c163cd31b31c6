"""What developers do through /cgi-bin/ (reference §4): access tokens,
customer-service and template messages (mass sends: services.mass).

Access tokens. Each lives PUBLICPLATFORM_ACCESS_TOKEN_TTL_SECONDS and is never
refused before then, whatever was issued after it: two processes of one
developer each fetching a token cannot knock each other out (the random-40001
complaint of reference §8). Fetching is rate-limited with 45009, which also ends
an SDK's refresh loop.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from publicplatform import identifiers
from publicplatform.exceptions import (
    AccessTokenExpired,
    AccessTokenInvalid,
    AccessTokenMissing,
    AppIdMissing,
    CustomLimitReached,
    InvalidAppId,
    InvalidArgs,
    InvalidGrantType,
    InvalidMessageType,
    InvalidOpenid,
    InvalidSecret,
    InvalidTemplateId,
    NotAFollower,
    OutsideWindow,
    QuotaReached,
    SecretMissing,
)
from publicplatform.models import (
    AccessToken,
    Follower,
    MessageTemplate,
    OfficialAccount,
)
from publicplatform.protocol import Article
from publicplatform.services import replies, webhooks
from wechat_core.ratelimit import window_hit

logger = logging.getLogger(__name__)
TOKEN_SCOPE = "pp-token"  # noqa: S105 - a rate-limit scope
DAY = 86400


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int


def token_issue(*, grant_type: str, appid: str, secret: str, ip: str | None) -> IssuedToken:
    if grant_type != "client_credential":
        raise InvalidGrantType()
    if not appid:
        raise AppIdMissing()
    if not secret:
        raise SecretMissing()
    account = OfficialAccount.objects.filter(appid=appid, is_active=True).first()
    if account is None:
        raise InvalidAppId(f"invalid appid: {appid[:40]!r} is no active account")
    if not hmac.compare_digest(account.secret_hash, identifiers.secret_hash(secret)):
        raise InvalidSecret("invalid appsecret: check it, or reset it in the developer console")
    hits = window_hit(scope=TOKEN_SCOPE, identity=appid, window_seconds=DAY)
    if hits.count > settings.PUBLICPLATFORM_TOKEN_REQUESTS_PER_DAY:
        raise QuotaReached(
            f"reach max api daily quota limit: {settings.PUBLICPLATFORM_TOKEN_REQUESTS_PER_DAY} "
            "token requests a day; every token stays valid for expires_in, so keep using it",
            retry_after=hits.retry_after,
        )
    ttl = settings.PUBLICPLATFORM_ACCESS_TOKEN_TTL_SECONDS
    token = f"{account.pk}.{secrets.token_urlsafe(48)}"
    AccessToken.objects.create(
        account=account,
        token_hash=identifiers.secret_hash(token),
        expires_at=timezone.now() + timedelta(seconds=ttl),
        issued_to_ip=ip,
    )
    return IssuedToken(access_token=token, expires_in=ttl)


def token_check(*, access_token: str) -> OfficialAccount:
    """The account an access_token was issued to, while it lives."""
    if not access_token:
        raise AccessTokenMissing()
    row = (
        AccessToken.objects.select_related("account")
        .filter(token_hash=identifiers.secret_hash(access_token))
        .first()
    )
    if row is None or not row.account.is_active:
        raise AccessTokenInvalid()
    if row.expires_at <= timezone.now():
        raise AccessTokenExpired(
            f"access_token expired at {row.expires_at:%Y-%m-%dT%H:%M:%SZ}: fetch a new one"
        )
    return row.account


def tokens_purge_expired() -> int:
    deleted, _ = AccessToken.objects.filter(
        expires_at__lt=timezone.now() - timedelta(days=1)
    ).delete()
    return int(deleted)


# --- Message content (custom, mass) -------------------------------------------------------


def _obj(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise InvalidArgs(f"invalid args: {name} must be an object")
    return value


def content_body(*, msgtype: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The chat message a text/news/image/... payload becomes."""
    if msgtype == "text":
        content = _obj(data, "text").get("content")
        if not isinstance(content, str) or not content.strip():
            raise InvalidArgs("invalid args: text.content is required")
        if len(content) > settings.MESSAGING_TEXT_MAX_CHARS:
            raise InvalidArgs(
                f"text.content exceeds {settings.MESSAGING_TEXT_MAX_CHARS} characters"
            )
        return {"text": content}
    if msgtype == "news":
        items = _obj(data, "news").get("articles")
        limit = settings.PUBLICPLATFORM_NEWS_MAX_ARTICLES
        if not isinstance(items, list) or not 1 <= len(items) <= limit:
            raise InvalidArgs(f"invalid args: news.articles has 1-{limit} items")
        articles = [
            Article(
                str(a.get("title", ""))[:64],
                str(a.get("description", ""))[:512],
                str(a.get("picurl", ""))[:1024],
                str(a.get("url", ""))[:1024],
            )
            for a in items
            if isinstance(a, dict)
        ]
        return replies.articles_body(articles)
    if msgtype in ("image", "voice", "mpvideo", "video", "mpnews"):
        media = _obj(data, msgtype).get("media_id")
        if not isinstance(media, str) or not media:
            raise InvalidArgs(f"invalid args: {msgtype}.media_id is required")
        label = {"mpnews": "[Article]", "mpvideo": "[Video]"}.get(msgtype) or replies.MEDIA_LABELS[
            msgtype
        ]
        return {"text": label, "official": {"type": msgtype, "media_id": media}}
    raise InvalidMessageType(
        f"invalid message type {str(msgtype)[:20]!r}: text, news, image, voice, video, mpnews"
    )


def _follower(account: OfficialAccount, openid: Any) -> Follower:
    if not isinstance(openid, str) or not identifiers.OPENID_RE.fullmatch(openid):
        raise InvalidOpenid("invalid openid: 28 characters of letters, digits, _ and -")
    follower = Follower.objects.filter(account=account, openid=openid).first()
    if follower is None:
        raise InvalidOpenid()
    return follower


def _custom_refusal(follower: Follower) -> OutsideWindow | CustomLimitReached | None:
    """Why a customer-service message to this follower may not go out now, if so."""
    window = timedelta(seconds=settings.PUBLICPLATFORM_CUSTOM_WINDOW_SECONDS)
    closes = follower.last_interaction_at + window
    if not follower.subscribed or closes <= timezone.now():
        reason = (
            "the user unfollowed"
            if not follower.subscribed
            else f"the window closed at {closes:%Y-%m-%dT%H:%M:%SZ}"
        )
        return OutsideWindow(f"response out of time limit or subscription is canceled: {reason}")
    limit = settings.PUBLICPLATFORM_CUSTOM_MESSAGES_PER_INTERACTION
    if follower.custom_sent >= limit:
        return CustomLimitReached(
            f"out of response count limit: {limit} messages per user interaction; "
            f"the window closes at {closes:%Y-%m-%dT%H:%M:%SZ}",
            retry_after=max(1.0, (closes - timezone.now()).total_seconds()),
        )
    return None


def custom_send(*, account: OfficialAccount, data: dict[str, Any]) -> None:
    """A customer-service message (客服消息): within 48 h of the follower's last
    interaction and at most PUBLICPLATFORM_CUSTOM_MESSAGES_PER_INTERACTION since.

    Locks in the order a follower's own message takes them, the chat first and
    the follower row second: the other way round, a developer's message and the
    follower's, sent at the same moment, deadlocked. So the message is posted
    first and counted after, in one transaction that a refusal rolls back."""
    body = content_body(msgtype=data.get("msgtype"), data=data)
    follower = _follower(account, data.get("touser"))
    refusal = _custom_refusal(follower)
    if refusal is not None:
        raise refusal
    window = timedelta(seconds=settings.PUBLICPLATFORM_CUSTOM_WINDOW_SECONDS)
    with transaction.atomic():
        replies.reply_post(
            account=account,
            follower=follower,
            body=body,
            key=f"ppc-{follower.pk}-{secrets.token_hex(8)}",
        )
        counted = Follower.objects.filter(
            pk=follower.pk,
            subscribed=True,
            last_interaction_at__gt=timezone.now() - window,
            custom_sent__lt=settings.PUBLICPLATFORM_CUSTOM_MESSAGES_PER_INTERACTION,
        ).update(custom_sent=F("custom_sent") + 1)
        if not counted:  # it changed meanwhile: refuse, and the message goes with it
            follower.refresh_from_db()
            raise _custom_refusal(follower) or OutsideWindow()


_SLOT = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\.DATA\s*\}\}")


def template_send(*, account: OfficialAccount, data: dict[str, Any]) -> int:
    """A template message (模板消息) to a follower; TEMPLATESENDJOBFINISH follows."""
    template_id = data.get("template_id")
    template = MessageTemplate.objects.filter(account=account, template_id=template_id).first()
    if not isinstance(template_id, str) or template is None:
        raise InvalidTemplateId(f"invalid template_id {str(template_id)[:64]!r}")
    given = data.get("data")
    values: dict[str, Any] = given if isinstance(given, dict) else {}

    def value(match: re.Match[str]) -> str:
        item = values.get(match.group(1))
        return str(item.get("value", "")) if isinstance(item, dict) else ""

    text = _SLOT.sub(value, template.content)
    url = replies.web_url(data["url"][:1024]) if isinstance(data.get("url"), str) else ""
    lines = f"{template.title}\n{text}".strip() + (f"\n{url}" if url else "")
    body = {
        "text": replies.clip(lines),
        "official": {"type": "template", "template_id": template_id, "url": url},
    }
    with transaction.atomic():
        follower = _follower(account, data.get("touser"))
        if not follower.subscribed:
            raise NotAFollower()
        ack = replies.reply_post(
            account=account,
            follower=follower,
            body=body,
            key=f"ppt-{follower.pk}-{secrets.token_hex(8)}",
        )
        if account.server_url:
            webhooks.delivery_create_for_event(
                account=account,
                follower=None,
                event="TEMPLATESENDJOBFINISH",
                fields=[("MsgID", ack.message_id), ("Status", "success")],
                from_user=follower.openid,
            )
    return ack.message_id
