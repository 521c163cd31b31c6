"""Mass sends (群发, reference §4.6): `message/mass/sendall` to every follower or
`message/mass/send` to a list of openids, checked and queued here, sent in
Celery batches, and reported to the developer with MASSSENDJOBFINISH."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from publicplatform import identifiers
from publicplatform.exceptions import (
    ClientMsgIdExists,
    InvalidArgs,
    InvalidOpenid,
    InvalidTag,
    QuotaReached,
)
from publicplatform.models import Follower, MassJob, MassJobStatus, OfficialAccount
from publicplatform.services import replies, webhooks
from publicplatform.services.developer_api import DAY, content_body
from wechat_core.ratelimit import window_hit
from wechat_core.transactions import enqueue_on_commit

logger = logging.getLogger(__name__)
MASS_SCOPE = "pp-mass"


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
            enqueue_on_commit("publicplatform.tasks.mass_send_batch", job.pk, name="mass_send")
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
