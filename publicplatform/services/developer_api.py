"""What developers do through /cgi-bin/ (reference §4): access tokens,
customer-service and template messages, mass sends.

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
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from publicplatform import identifiers
from publicplatform.exceptions import (
    AccessTokenExpired,
    AccessTokenInvalid,
    AccessTokenMissing,
    ClientMsgIdExists,
    CustomLimitReached,
    InvalidAppId,
    InvalidArgs,
    InvalidGrantType,
    InvalidMessageType,
    InvalidOpenid,
    InvalidSecret,
    InvalidTag,
    InvalidTemplateId,
    NotAFollower,
    OutsideWindow,
    QuotaReached,
)
from publicplatform.models import (
    AccessToken,
    Follower,
    MassJob,
    MassJobStatus,
    MessageTemplate,
    OfficialAccount,
)
from publicplatform.protocol import Article
from publicplatform.services import replies, webhooks
from wechat_core.ratelimit import window_hit

logger = logging.getLogger(__name__)
TOKEN_SCOPE = "pp-token"  # noqa: S105 - a rate-limit scope
MASS_SCOPE = "pp-mass"
DAY = 86400


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int


def token_issue(*, grant_type: str, appid: str, secret: str, ip: str | None) -> IssuedToken:
    if grant_type != "client_credential":
        raise InvalidGrantType()
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


def custom_send(*, account: OfficialAccount, data: dict[str, Any]) -> None:
    """A customer-service message (客服消息): within 48 h of the follower's last
    interaction and at most PUBLICPLATFORM_CUSTOM_MESSAGES_PER_INTERACTION since."""
    body = content_body(msgtype=data.get("msgtype"), data=data)
    with transaction.atomic():
        follower = _follower(account, data.get("touser"))
        follower = Follower.objects.select_for_update(no_key=True).get(pk=follower.pk)
        window = timedelta(seconds=settings.PUBLICPLATFORM_CUSTOM_WINDOW_SECONDS)
        closes = follower.last_interaction_at + window
        if not follower.subscribed or closes <= timezone.now():
            reason = (
                "the user unfollowed"
                if not follower.subscribed
                else f"the window closed at {closes:%Y-%m-%dT%H:%M:%SZ}"
            )
            raise OutsideWindow(f"response out of time limit or subscription is canceled: {reason}")
        limit = settings.PUBLICPLATFORM_CUSTOM_MESSAGES_PER_INTERACTION
        if follower.custom_sent >= limit:
            raise CustomLimitReached(
                f"out of response count limit: {limit} messages per user interaction; "
                f"the window closes at {closes:%Y-%m-%dT%H:%M:%SZ}",
                retry_after=max(1.0, (closes - timezone.now()).total_seconds()),
            )
        Follower.objects.filter(pk=follower.pk).update(custom_sent=F("custom_sent") + 1)
        replies.reply_post(
            account=account,
            follower=follower,
            body=body,
            key=f"ppc-{follower.pk}-{secrets.token_hex(8)}",
        )


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


# --- Mass sends --------------------------------------------------------------------------


def mass_submit(*, account: OfficialAccount, data: dict[str, Any], to_all_call: bool) -> MassJob:
    """Check a sendall (filter) or send (touser) request and queue the job."""
    msgtype = data.get("msgtype")
    content = content_body(msgtype=msgtype, data=data)
    openids: list[str] = []
    to_all = False
    if to_all_call:
        given = data.get("filter")
        filters: dict[str, Any] = given if isinstance(given, dict) else {}
        to_all = filters.get("is_to_all") is True
        tag = filters.get("tag_id", filters.get("group_id"))  # wechatpy sends group_id
        if not to_all and tag is not None:
            raise InvalidTag()
        if not to_all:
            raise InvalidArgs("invalid args: filter.is_to_all must be true")
    else:
        touser = data.get("touser")
        limit = settings.PUBLICPLATFORM_MASS_SEND_MAX_OPENIDS
        if not isinstance(touser, list) or not 2 <= len(touser) <= limit:
            raise InvalidArgs(f"invalid args: touser lists 2-{limit} openids")
        if not all(isinstance(o, str) and identifiers.OPENID_RE.fullmatch(o) for o in touser):
            raise InvalidOpenid()
        openids = list(dict.fromkeys(touser))
    given_id = data.get("clientmsgid")
    client_msg_id = given_id if isinstance(given_id, str) else ""
    hits = window_hit(scope=MASS_SCOPE, identity=str(account.pk), window_seconds=DAY)
    if hits.count > settings.PUBLICPLATFORM_MASS_SENDS_PER_DAY:
        raise QuotaReached(
            f"reach max api daily quota limit: {settings.PUBLICPLATFORM_MASS_SENDS_PER_DAY} "
            "mass sends a day",
            retry_after=hits.retry_after,
        )
    return _mass_create(account, str(msgtype), content, to_all, openids, client_msg_id[:64])


def _mass_create(
    account: OfficialAccount,
    msgtype: str,
    content: dict[str, Any],
    to_all: bool,
    openids: list[str],
    client_msg_id: str,
) -> MassJob:
    from publicplatform.tasks import mass_send_batch

    day_ago = timezone.now() - timedelta(days=1)
    if client_msg_id:
        MassJob.objects.filter(
            account=account, client_msg_id=client_msg_id, created_at__lt=day_ago
        ).update(client_msg_id="")
    try:
        with transaction.atomic():
            job = MassJob.objects.create(
                account=account,
                msg_type=msgtype,
                content=content,
                to_all=to_all,
                openids=openids,
                client_msg_id=client_msg_id,
            )
            transaction.on_commit(lambda: mass_send_batch.delay(job.pk))
    except IntegrityError as error:
        raise ClientMsgIdExists() from error
    return job


def mass_batch_send(*, job_id: int) -> bool:
    """Send the next batch of a mass job; True while more remain. Each follower's
    message is its own small transaction (idempotent by job and follower), so a
    crashed batch resumes where it stopped."""
    job = MassJob.objects.select_related("account").get(pk=job_id)
    if job.status == MassJobStatus.FINISHED:
        return False
    batch = settings.PUBLICPLATFORM_MASS_SEND_BATCH
    followers = Follower.objects.filter(account=job.account, subscribed=True)
    if job.to_all:
        chunk = list(followers.filter(pk__gt=job.cursor).order_by("pk")[:batch])
        cursor = chunk[-1].pk if chunk else job.cursor
        total = job.total_count or followers.count()
        missing = 0
    else:
        wanted = job.openids[job.cursor : job.cursor + batch]
        chunk = list(followers.filter(openid__in=wanted).order_by("pk"))
        cursor, total, missing = (
            job.cursor + len(wanted),
            len(job.openids),
            len(wanted) - len(chunk),
        )
    sent = errors = 0
    for follower in chunk:
        try:
            replies.reply_post(
                account=job.account,
                follower=follower,
                body=job.content,
                key=f"ppm-{job.pk}-{follower.pk}",
            )
            sent += 1
        except Exception:  # one follower's failure (e.g. account deleted) must not stop the job
            logger.exception("mass job %s: could not send to follower %s", job.pk, follower.pk)
            errors += 1
    more = len(chunk) == batch if job.to_all else cursor < len(job.openids)
    _mass_progress(
        job, cursor=cursor, total=total, sent=sent, errors=errors, filtered=missing, done=not more
    )
    return more


@transaction.atomic
def _mass_progress(
    job: MassJob, *, cursor: int, total: int, sent: int, errors: int, filtered: int, done: bool
) -> None:
    MassJob.objects.filter(pk=job.pk).update(
        cursor=cursor,
        total_count=total,
        sent_count=F("sent_count") + sent,
        error_count=F("error_count") + errors,
        filter_count=F("filter_count") + sent + errors,
    )
    if not done:
        return
    job.refresh_from_db()
    job.status, job.finished_at = MassJobStatus.FINISHED, timezone.now()
    job.save(update_fields=["status", "finished_at"])
    if job.account.server_url:
        webhooks.delivery_create_for_event(
            account=job.account,
            follower=None,
            event="MASSSENDJOBFINISH",
            fields=[
                ("MsgID", job.pk),
                ("Status", "send success"),
                ("TotalCount", job.total_count),
                ("FilterCount", job.filter_count),
                ("SentCount", job.sent_count),
                ("ErrorCount", job.error_count),
            ],
            from_user="mphelper",
        )
