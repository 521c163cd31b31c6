"""Pushes to developers' servers (reference §2-§3), Saleor style: a persisted
`WebhookDelivery` per user message or event, one `WebhookAttempt` per try.

A push is created inside the transaction that caused it and enqueued after
commit (Celery queue `webhook`; in the embedded mode wechat_core.embedded),
never run in the user's request. Each attempt
takes one of the account's slots (publicplatform.concurrency), signs afresh and
sends the same stored plaintext; safe mode encrypts it anew. An answer of
`success` or nothing means no reply; valid reply XML is relayed into the chat;
anything else, a timeout or a non-200 fails the attempt. After the last failed
attempt the user gets the platform's notice.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from publicplatform import protocol, transport
from publicplatform.concurrency import call_hold_seconds, console_slot, slot_acquire, slot_release
from publicplatform.exceptions import ServerNotConfigured
from publicplatform.models import (
    AttemptOutcome,
    DeliveryStatus,
    EncryptionMode,
    Follower,
    OfficialAccount,
    WebhookAttempt,
    WebhookDelivery,
)
from publicplatform.services import replies
from wechat_core import embedded
from wechat_core.transactions import after_commit, task_enqueue

logger = logging.getLogger(__name__)
EXCERPT = 500
# Pushes whose reply reaches the user, and whose failure the user is told of.
USER_FACING_EVENTS = {"", "subscribe", "CLICK", "SCAN"}


# --- Creating pushes ---------------------------------------------------------------------


def _dispatch(delivery_id: int) -> None:
    """Hand a push to the `webhook` queue; in the embedded mode, where Celery would
    run it right here in the user's request, to a background runner instead."""
    if embedded.tasks_run_inline():
        embedded.retry_in_background(
            lambda: delivery_step(delivery_id=delivery_id).retry_in,
            what=f"webhook push {delivery_id}",
            pool="webhook",
            threads=settings.PUBLICPLATFORM_EMBEDDED_WEBHOOK_THREADS,
        )
        return
    task_enqueue("publicplatform.tasks.deliver_webhook", delivery_id)


def _delivery_create(
    *,
    account: OfficialAccount,
    follower: Follower | None,
    fields: list[tuple[str, str | int]],
    msg_type: str,
    create_time: int,
    event: str = "",
    msg_id: int | None = None,
) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(
        account=account,
        follower=follower,
        msg_type=msg_type,
        event=event,
        msg_id=msg_id,
        create_time=create_time,
        payload=protocol.push_xml(fields),
    )
    delivery_id = delivery.pk
    after_commit(lambda: _dispatch(delivery_id), name="webhook_dispatch")
    return delivery


def delivery_create_for_text(
    *,
    account: OfficialAccount,
    follower: Follower,
    message_id: int,
    text: str,
    created_at: dt.datetime,
) -> WebhookDelivery:
    """A user's text message (MsgId = our message id, so it is pushed once)."""
    create_time = int(created_at.timestamp())
    fields: list[tuple[str, str | int]] = [
        ("ToUserName", account.original_id),
        ("FromUserName", follower.openid),
        ("CreateTime", create_time),
        ("MsgType", "text"),
        ("Content", text),
        ("MsgId", message_id),
    ]
    return _delivery_create(
        account=account,
        follower=follower,
        fields=fields,
        msg_type="text",
        create_time=create_time,
        msg_id=message_id,
    )


def delivery_create_for_event(
    *,
    account: OfficialAccount,
    follower: Follower | None,
    event: str,
    fields: list[tuple[str, str | int]],
    from_user: str | None = None,
) -> WebhookDelivery:
    """An event (no MsgId); `fields` follow Event in the XML, in the order given."""
    create_time = int(timezone.now().timestamp())
    sender = from_user if from_user is not None else (follower.openid if follower else "")
    head: list[tuple[str, str | int]] = [
        ("ToUserName", account.original_id),
        ("FromUserName", sender),
        ("CreateTime", create_time),
        ("MsgType", "event"),
        ("Event", event),
    ]
    return _delivery_create(
        account=account,
        follower=follower,
        fields=head + fields,
        msg_type="event",
        create_time=create_time,
        event=event,
    )


# --- One attempt ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedRequest:
    params: dict[str, str]
    body: bytes
    signed_string: str


def push_sign(*, account: OfficialAccount, payload: str, openid: str) -> SignedRequest:
    """Query and body of a push: fresh timestamp, nonce and signature every time;
    in safe mode the body is encrypted anew and carries msg_signature."""
    timestamp, nonce = protocol.timestamp(), protocol.nonce()
    params = {
        "signature": protocol.sign(account.token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": openid,
    }
    body = payload
    if account.encryption_mode == EncryptionMode.SAFE:
        encrypted = protocol.encrypt(account.encoding_aes_key, account.appid, payload)
        body = protocol.encrypted_envelope(account.original_id, encrypted)
        params["encrypt_type"] = "aes"
        params["msg_signature"] = protocol.sign(account.token, timestamp, nonce, encrypted)
    signed = protocol.signed_string(account.token, timestamp, nonce)
    return SignedRequest(params, body.encode(), signed)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: AttemptOutcome
    url: str
    status_code: int | None
    latency_ms: float
    detail: str
    excerpt: str
    reply: protocol.Reply | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in (AttemptOutcome.REPLIED, AttemptOutcome.NO_REPLY)


def _classify(account: OfficialAccount, answer: transport.DeveloperResponse) -> AttemptResult:
    excerpt = answer.body[:EXCERPT].decode("utf-8", errors="replace")
    base = (answer.url, answer.status_code, round(answer.elapsed_ms, 2))
    if answer.error:
        outcome = {"timeout": AttemptOutcome.TIMEOUT, "too_large": AttemptOutcome.TOO_LARGE}.get(
            answer.error, AttemptOutcome.CONNECT_ERROR
        )
        return AttemptResult(outcome, *base, answer.detail, excerpt)
    if answer.status_code != 200:
        return AttemptResult(
            AttemptOutcome.HTTP_ERROR, *base, f"HTTP {answer.status_code}", excerpt
        )
    try:
        decoded = protocol.response_decode(
            answer.body,
            token=account.token,
            encoding_aes_key=account.encoding_aes_key,
            appid=account.appid,
            max_articles=settings.PUBLICPLATFORM_NEWS_MAX_ARTICLES,
        )
    except protocol.ProtocolError as error:
        return AttemptResult(AttemptOutcome.BAD_REPLY, *base, str(error)[:300], excerpt)
    reply = decoded.reply
    if reply.msg_type is None:
        detail = "success/empty" + (" (encrypted)" if decoded.encrypted else "")
        return AttemptResult(AttemptOutcome.NO_REPLY, *base, detail, excerpt, reply)
    detail = f"{reply.msg_type} reply" + (" (encrypted)" if decoded.encrypted else "")
    return AttemptResult(AttemptOutcome.REPLIED, *base, detail, excerpt, reply)


def _post(account: OfficialAccount, signed: SignedRequest) -> transport.DeveloperResponse:
    return transport.developer_call(
        method="POST",
        url=account.server_url,
        params=signed.params,
        content=signed.body,
        content_type="text/xml; charset=utf-8",
        timeout=settings.PUBLICPLATFORM_WEBHOOK_TIMEOUT_SECONDS,
        max_bytes=settings.PUBLICPLATFORM_WEBHOOK_MAX_RESPONSE_BYTES,
    )


def push_send(*, account: OfficialAccount, payload: str, openid: str) -> AttemptResult:
    signed = push_sign(account=account, payload=payload, openid=openid)
    return _classify(account, _post(account, signed))


# --- Running a delivery --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """What the task does next: nothing (`retry_in` None) or run again later."""

    retry_in: float | None
    status: str


def delivery_step(*, delivery_id: int) -> Step:
    """Make the next attempt of a pending delivery, if the account has a free slot."""
    delivery = (
        WebhookDelivery.objects.select_related("account", "follower").filter(pk=delivery_id).first()
    )
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return Step(None, delivery.status if delivery else "missing")
    account = delivery.account
    if not account.server_url:
        return _finish_without_server(delivery)
    slot = slot_acquire(
        account_id=account.pk,
        limit=settings.PUBLICPLATFORM_WEBHOOK_CONCURRENCY_PER_ACCOUNT,
        hold_seconds=call_hold_seconds(),
    )
    if slot is None:  # the account's server is busy: wait in the queue, hold no worker
        wait = settings.PUBLICPLATFORM_WEBHOOK_SLOT_WAIT_SECONDS
        return Step(wait * (0.5 + random.random()), "waiting")  # noqa: S311 - jitter
    try:
        started = timezone.now()
        openid = delivery.follower.openid if delivery.follower else ""
        result = push_send(account=account, payload=delivery.payload, openid=openid)
        # The reply goes into the chat before the slot is given back: the release's
        # Redis round trip stays off the user's path (the slot is held a few ms longer).
        return _record(delivery, started, result)
    finally:
        slot_release(account_id=account.pk, token=slot)


def _finish_without_server(delivery: WebhookDelivery) -> Step:
    WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED,
        failure_reason="The account has no server any more.",
        finished_at=timezone.now(),
    )
    return Step(None, DeliveryStatus.FAILED)


@transaction.atomic
def _record(delivery: WebhookDelivery, started: dt.datetime, result: AttemptResult) -> Step:
    """Record the attempt of `delivery` (loaded before it, with its account and
    follower) and relay its reply; the row's own state is read again under lock."""
    status, attempts = (
        WebhookDelivery.objects.select_for_update(no_key=True)
        .filter(pk=delivery.pk)
        .values_list("status", "attempt_count")
        .get()
    )
    if status != DeliveryStatus.PENDING:  # a duplicate task got here first
        return Step(None, status)
    delivery.attempt_count = attempts + 1
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempt_count,
        started_at=started,
        latency_ms=result.latency_ms,
        url=result.url[:1000],
        status_code=result.status_code,
        outcome=result.outcome,
        detail=result.detail[:300],
        response_excerpt=result.excerpt,
    )
    fields = ["attempt_count"]
    if result.ok:
        delivery.status, delivery.finished_at = DeliveryStatus.SUCCEEDED, timezone.now()
        fields += ["status", "finished_at", "reply_type", "reply_message_id"]
        delivery.reply_type = result.reply.msg_type or "" if result.reply else ""
        delivery.reply_message_id = _relay(delivery, result.reply)
        delivery.save(update_fields=fields)
        return Step(None, delivery.status)
    if delivery.attempt_count < settings.PUBLICPLATFORM_WEBHOOK_MAX_ATTEMPTS:
        delivery.save(update_fields=fields)
        return Step(settings.PUBLICPLATFORM_WEBHOOK_RETRY_DELAY_SECONDS, delivery.status)
    delivery.status, delivery.finished_at = DeliveryStatus.FAILED, timezone.now()
    delivery.failure_reason = f"{result.outcome}: {result.detail}"[:300]
    delivery.save(update_fields=[*fields, "status", "finished_at", "failure_reason"])
    if delivery.follower is not None and delivery.event in USER_FACING_EVENTS:
        replies.notice_post(
            account=delivery.account, follower=delivery.follower, key=f"ppn-{delivery.pk}"
        )
    return Step(None, delivery.status)


def _relay(delivery: WebhookDelivery, reply: protocol.Reply | None) -> int | None:
    follower = delivery.follower
    if reply is None or follower is None or delivery.event not in USER_FACING_EVENTS:
        return None
    if reply.to_user and reply.to_user != follower.openid:
        logger.info(
            "delivery %s: reply addressed to another openid; sent to the sender", delivery.pk
        )
    body = replies.reply_body(reply)
    if body is None:
        return None
    ack = replies.reply_post(
        account=delivery.account, follower=follower, body=body, key=f"ppr-{delivery.pk}"
    )
    return ack.message_id


def deliveries_requeue_stale(*, idle_seconds: float) -> list[int]:
    """Enqueue again pending pushes that nobody has touched for `idle_seconds` (a
    task lost with a broker or a worker); returns their ids. A duplicate task is
    harmless: an attempt is recorded only while the push is still pending."""
    cutoff = timezone.now() - dt.timedelta(seconds=idle_seconds)
    stale = list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, created_at__lt=cutoff)
        .exclude(attempts__started_at__gte=cutoff)
        .values_list("pk", flat=True)[:1000]
    )
    for delivery_id in stale:
        _dispatch(delivery_id)
    return stale


# --- The console's "test my webhook" ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookTest:
    url: str
    plaintext: str
    body: str
    signed_string: str
    signature: str
    result: AttemptResult


def webhook_test(*, account: OfficialAccount, text: str) -> WebhookTest:
    """Push a sample text message from a made-up follower, and show every step."""
    if not account.server_url:
        raise ServerNotConfigured()
    openid = "o" + "TESTFOLLOWER".ljust(27, "0")
    payload = protocol.push_xml(
        [
            ("ToUserName", account.original_id),
            ("FromUserName", openid),
            ("CreateTime", int(timezone.now().timestamp())),
            ("MsgType", "text"),
            ("Content", text[:600] or "hello"),
            ("MsgId", random.getrandbits(62)),
        ]
    )
    signed = push_sign(account=account, payload=payload, openid=openid)
    with console_slot(account_id=account.pk):
        answer = _post(account, signed)
    return WebhookTest(
        answer.url,
        payload,
        signed.body.decode(),
        signed.signed_string,
        signed.params["signature"],
        _classify(account, answer),
    )
