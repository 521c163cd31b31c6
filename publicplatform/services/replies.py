"""What an account says in a follower's chat: passive replies, keyword replies, the
greeting, API messages and the failure notice, all posted as the account's service
identity through messaging (idempotent by a key derived from what caused them)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from messaging.models import MessageKind
from messaging.services.sending import message_send_as_service
from messaging.types import SendAck
from publicplatform.keywords import pattern_search
from publicplatform.models import AutoReply, Follower, MatchKind, OfficialAccount
from publicplatform.protocol import Article, Reply

# What WeChat shows when an account's server fails (reference §3.2).
UNAVAILABLE_NOTICE = "该公众号暂时无法提供服务，请稍后再试"  # noqa: RUF001 - WeChat's text
MEDIA_LABELS = {"image": "[Image]", "voice": "[Voice]", "video": "[Video]"}


def clip(text: str) -> str:
    limit = settings.MESSAGING_TEXT_MAX_CHARS
    return text if len(text) <= limit else text[: limit - 1] + "…"


def web_url(value: str) -> str:
    """`value` if it is an http(s) URL, else "": a developer's article link becomes
    a link in users' clients, where `javascript:` or `data:` would run."""
    value = value.strip()
    return value if value.lower().startswith(("http://", "https://")) else ""


def articles_body(articles: list[Article] | tuple[Article, ...]) -> dict[str, Any]:
    """News (图文): the web client draws cards; older clients read the text."""
    cards = [
        {
            "title": a.title,
            "description": a.description,
            "url": web_url(a.url),
            "picurl": web_url(a.pic_url),
        }
        for a in articles
    ]
    lines = [line for card in cards for line in (card["title"], card["description"], card["url"])]
    return {
        "text": clip("\n".join(line for line in lines if line) or "[News]"),
        "official": {"type": "news", "articles": cards},
    }


def reply_body(reply: Reply) -> dict[str, Any] | None:
    """A passive reply as a message body; None for replies that show nothing."""
    if reply.msg_type == "text":
        return {"text": clip(reply.content)} if reply.content.strip() else None
    if reply.msg_type == "news":
        return articles_body(reply.articles)
    if reply.msg_type == "music":
        text = " — ".join(part for part in (reply.title, reply.description) if part)
        url = web_url(reply.music_url)
        return {
            "text": clip(f"♪ {text or 'Music'}\n{url}".strip()),
            "official": {"type": "music", "url": url},
        }
    if reply.msg_type in MEDIA_LABELS:
        # Media uploads are not part of this platform; say what was sent.
        title = f" {reply.title}" if reply.title else ""
        return {
            "text": f"{MEDIA_LABELS[reply.msg_type]}{title}",
            "official": {"type": reply.msg_type, "media_id": reply.media_id},
        }
    return None  # transfer_customer_service: no human agents here


def reply_post(
    *,
    account: OfficialAccount,
    follower: Follower,
    body: dict[str, Any],
    key: str,
    kind: MessageKind = MessageKind.TEXT,
) -> SendAck:
    """Post into the follower's chat as the account; `key` makes it idempotent."""
    return message_send_as_service(
        sender_id=account.service_user_id,
        conversation_id=follower.conversation_id,
        kind=kind,
        body=body,
        client_msg_id=key,
    )


def notice_post(*, account: OfficialAccount, follower: Follower, key: str) -> SendAck:
    return reply_post(
        account=account,
        follower=follower,
        body={"event": "official_unavailable", "text": UNAVAILABLE_NOTICE},
        key=key,
        kind=MessageKind.SYSTEM,
    )


def _matches(rule: AutoReply, text: str) -> bool:
    if rule.match == MatchKind.EXACT:
        return text.strip().lower() == rule.pattern.lower()
    if rule.match == MatchKind.CONTAINS:
        return rule.pattern.lower() in text.lower()
    # A developer's pattern on a user's text: RE2, linear in the text (keywords).
    return pattern_search(rule.pattern, text)


def autoreply_match(*, account_id: int, text: str) -> AutoReply | None:
    for rule in AutoReply.objects.filter(account_id=account_id):
        if _matches(rule, text):
            return rule
    return None


def auto_reply_answer(*, follower_id: int, key: str, text: str) -> SendAck | None:
    """An account without a server answers a message (or a click, with the button
    key as text) with its first matching keyword rule; `key` names what it answers."""
    follower = Follower.objects.select_related("account").filter(pk=follower_id).first()
    if follower is None or not follower.subscribed:
        return None
    rule = autoreply_match(account_id=follower.account_id, text=text)
    if rule is None:
        return None
    return reply_post(
        account=follower.account, follower=follower, body={"text": rule.reply}, key=key
    )


def greeting_send(*, follower_id: int, followed_at: int) -> SendAck | None:
    """The greeting of an account without a server, once per follow."""
    follower = Follower.objects.select_related("account").filter(pk=follower_id).first()
    if follower is None or not follower.subscribed or not follower.account.greeting:
        return None
    return reply_post(
        account=follower.account,
        follower=follower,
        body={"text": follower.account.greeting},
        key=f"ppg-{follower.pk}-{followed_at}",
    )
