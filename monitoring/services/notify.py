"""Delivering one notification: e-mail, an Alertmanager-format webhook, or chat
messages from the monitoring system account to every active operator.

`notification_deliver` runs in the `monitoring` queue (tasks.deliver_notification)
with the notification row locked, so two workers never send the same one; it is
marked sent only after the channel accepted it, and retried with backoff until
MONITORING_NOTIFY_MAX_ATTEMPTS. Chat messages carry a client_msg_id derived from
the notification, so a retry after a partial failure never repeats a message.

The chat channel needs a messaging app, which sits above monitoring: messaging
registers how a system account writes to a user (`chat_sender_register`, in its
AppConfig.ready), and monitoring imports nothing of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Protocol

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.selectors import operators_active
from accounts.services.system import system_account_ensure, system_account_ticket
from accounts.types import VerifiedTicket
from monitoring.models import Alert, Notification, NotificationStatus
from monitoring.models.alerts import ChannelKind
from wechat_core.http import outbound_client

ZERO_TIME = "0001-01-01T00:00:00Z"


class DeliveryFailed(Exception):
    """The channel did not take the notification; the task retries."""


class ChatSender(Protocol):
    """Writes `text` from the system account `user_id` into its chat with
    `recipient_id`; a repeated `client_msg_id` must not repeat the message."""

    def __call__(
        self,
        *,
        ticket: VerifiedTicket,
        user_id: int,
        recipient_id: int,
        text: str,
        client_msg_id: str,
    ) -> object: ...


_chat_sender: list[ChatSender] = []


def chat_sender_register(sender: ChatSender) -> None:
    """Install the chat channel's transport (messaging does, in its AppConfig.ready)."""
    _chat_sender[:] = [sender]


def _rfc3339(moment: Any) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else ZERO_TIME


def _summary(alert: Alert, kind: str) -> str:
    rule = alert.rule
    value = "n/a" if alert.value is None else f"{alert.value:.4g}"
    word = "FIRING" if kind == "firing" else "RESOLVED"
    return f"[{word}] {rule.name} ({rule.severity}): {rule.metric} {rule.aggregation} = {value}"


def _labels(alert: Alert) -> dict[str, str]:
    rule = alert.rule
    labels = {"alertname": rule.name, "severity": rule.severity, "metric": rule.metric}
    labels.update({f"filter_{k}": str(v) for k, v in (rule.labels or {}).items()})
    return labels


def alertmanager_payload(*, alert: Alert, kind: str, receiver: str) -> dict[str, Any]:
    """The body Alertmanager's webhook receiver sends (version 4)."""
    rule = alert.rule
    labels = _labels(alert)
    annotations = {"summary": _summary(alert, kind), "description": rule.description}
    base = settings.MONITORING_EXTERNAL_URL.rstrip("/")
    fingerprint = hashlib.sha256(f"{rule.pk}:{alert.pk}".encode()).hexdigest()[:16]
    entry = {
        "status": kind,
        "labels": labels,
        "annotations": annotations,
        "startsAt": _rfc3339(alert.fired_at or alert.started_at),
        "endsAt": _rfc3339(alert.ended_at) if kind == "resolved" else ZERO_TIME,
        "generatorURL": f"{base}/monitoring/alerts/{alert.pk}" if base else "",
        "fingerprint": fingerprint,
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{rule.name}"}}',
        "truncatedAlerts": 0,
        "status": kind,
        "receiver": receiver,
        "groupLabels": {"alertname": rule.name},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": f"{base}/monitoring/" if base else "",
        "alerts": [entry],
    }


def _explanation(notification: Notification) -> str:
    """What the evaluation said at this transition ("12 % vs threshold 5 %", or a
    rollout guard's numbers and what it did)."""
    event = notification.alert.events.filter(kind=notification.kind).first()
    return event.message if event is not None else ""


def _email(notification: Notification) -> None:
    target = [line.strip() for line in notification.channel.target.splitlines() if line.strip()]
    recipients = target or [user.email for user in operators_active() if user.email]
    if not recipients:
        return
    alert = notification.alert
    body = f"{_summary(alert, notification.kind)}\n\n{_explanation(notification)}\n\n"
    body += f"{alert.rule.description}\n"
    send_mail(_summary(alert, notification.kind), body, None, recipients)


def _webhook(notification: Notification) -> None:
    payload = alertmanager_payload(
        alert=notification.alert, kind=notification.kind, receiver=notification.channel.name
    )
    timeout = settings.MONITORING_WEBHOOK_TIMEOUT_SECONDS
    with outbound_client(service="monitoring.webhook", timeout=timeout) as client:
        response = client.post(
            notification.channel.target.strip(),
            content=json.dumps(payload),
            headers={"Content-Type": "application/json"},
        )
    if response.status_code >= 300:
        raise DeliveryFailed(f"the webhook answered {response.status_code}")


def _chat(notification: Notification) -> None:
    if not _chat_sender:
        raise DeliveryFailed("no chat transport is installed (the messaging app registers it)")
    send = _chat_sender[0]
    system = system_account_ensure(
        wechat_id=settings.MONITORING_SYSTEM_WECHAT_ID, nickname="Monitoring"
    )
    text = _summary(notification.alert, notification.kind)
    for line in (_explanation(notification), notification.alert.rule.description):
        if line:
            text += f"\n{line}"
    with system_account_ticket(user=system) as ticket:
        for operator in operators_active():
            if operator.pk == system.pk:
                continue
            send(
                ticket=ticket,
                user_id=system.pk,
                recipient_id=operator.pk,
                text=text,
                client_msg_id=f"alert-{notification.pk}-{operator.pk}",
            )


_SENDERS = {ChannelKind.EMAIL: _email, ChannelKind.WEBHOOK: _webhook, ChannelKind.CHAT: _chat}


def notification_deliver(*, notification_id: int) -> bool:
    """Send it unless already sent. Returns True once sent; raises DeliveryFailed
    (to be retried) while attempts remain."""
    failure: str | None = None
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update()
            .select_related("alert__rule", "channel")
            .filter(pk=notification_id)
            .first()
        )
        if notification is None or notification.status == NotificationStatus.SENT:
            return True
        notification.attempts += 1
        try:
            _SENDERS[ChannelKind(notification.channel.kind)](notification)
        except Exception as error:
            failure = f"{type(error).__name__}: {error}"[:2000]
            exhausted = notification.attempts >= settings.MONITORING_NOTIFY_MAX_ATTEMPTS
            notification.last_error = failure
            notification.status = NotificationStatus.FAILED if exhausted else notification.status
            notification.save(update_fields=["attempts", "last_error", "status"])
            if exhausted:
                return False
        else:
            notification.status, notification.sent_at = NotificationStatus.SENT, timezone.now()
            notification.save(update_fields=["attempts", "status", "sent_at"])
    if failure is not None:
        raise DeliveryFailed(failure)  # after the commit that recorded the attempt
    return True
