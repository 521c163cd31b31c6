"""The shake answers' JSON, shared by the HTTP views and the websocket frames
(docs/api.md, docs/protocol.md)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from shake.access import ShakeAnswer, engine
from shake.selectors import CouponView
from shake.services.assets import HeldReport, Manifest
from shake.services.opening import Opened, Win
from shake.services.sharing import SharesSent
from wechat_core.errors import InvalidInput


def shake_json(answer: ShakeAnswer) -> dict[str, Any]:
    packet: dict[str, Any] | None = None
    if answer.win is not None:
        prize = answer.win.prize
        sponsor = engine().sponsors.get(prize.sponsor_id)
        packet = {
            "id": prize.prize_id,
            "round": prize.round_id,
            "amount": prize.amount,
            "kind": prize.kind,
            "extra_shares": prize.extra_shares,
            "sponsor": {
                "id": prize.sponsor_id,
                "name": sponsor.name if sponsor else "",
                "logo_url": sponsor.logo_url if sponsor else "",
                "background": sponsor.background if sponsor else "",
            },
            "signature": answer.win.signature,
        }
    return {
        "round": answer.round_id,
        "result": "not_yet" if answer.not_yet else "packet" if packet else "nothing",
        "packet": packet,
        "record": answer.record,
        "capped": answer.capped,
        "interval": answer.interval,
        "tier": answer.tier,
        "schedule": _schedule_json(answer),
        "group": _group_json(answer),
    }


def schedule_json(answer: ShakeAnswer) -> dict[str, Any]:
    """GET /api/shake/schedule: what a shake would say of the round, without shaking."""
    return {
        "round": answer.round_id,
        "interval": answer.interval,
        "tier": answer.tier,
        "schedule": _schedule_json(answer),
        "group": _group_json(answer),
        "assets": _assets_version_json(answer),
    }


def _assets_version_json(answer: ShakeAnswer) -> dict[str, Any] | None:
    if answer.schedule is None:
        return None
    manifest = engine().manifest_for(answer.schedule.round_id)
    if manifest is None or not manifest.entries:
        return None
    return {"activity": manifest.activity_id, "version": manifest.version}


def manifest_json(manifest: Manifest | None) -> dict[str, Any]:
    report_seconds = settings.SHAKE_ASSETS_REPORT_SECONDS
    if manifest is None:
        return {"activity": None, "version": 0, "assets": [], "report_seconds": report_seconds}
    return {
        "activity": manifest.activity_id,
        "version": manifest.version,
        "report_seconds": report_seconds,
        "assets": [
            {
                "url": entry.url,
                "sha256": entry.sha256,
                "bytes": entry.size,
                "content_type": entry.content_type,
                "sponsor": entry.sponsor_id,
                "role": entry.role,
            }
            for entry in manifest.entries
        ],
    }


def held_json(report: HeldReport, manifest: Manifest) -> dict[str, Any]:
    return {
        "complete": report.complete,
        "missing": list(report.missing),
        "version": manifest.version,
    }


def _group_json(answer: ShakeAnswer) -> dict[str, Any] | None:
    """The user's staggered group in the schedule's round (seed 003 错峰)."""
    if answer.schedule is None:
        return None
    view = answer.schedule
    return {
        "index": answer.group,
        "count": view.groups,
        "stagger": view.stagger,
        "starts_at": _iso(answer.opens if answer.opens is not None else view.starts),
    }


def _schedule_json(answer: ShakeAnswer) -> dict[str, Any] | None:
    if answer.schedule is None:
        return None
    view = answer.schedule
    return {
        "round": view.round_id,
        "version": view.version,
        "starts_at": _iso(view.starts),
        "ends_at": _iso(view.ends),
        "paused": view.paused,
        "ended": view.ended,
        "token": answer.schedule_token,
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


def record_from(data: Mapping[str, Any]) -> object:
    return data.get("record")


def schedule_from(data: Mapping[str, Any]) -> object:
    """The signed schedule the client carried (route 3 of live control), if any."""
    return data.get("schedule")


def _int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**62:
        raise InvalidInput(f"'{name}' must be a positive integer.", details={"field": name})
    return value


def win_from(data: Mapping[str, Any]) -> Win:
    signature = data.get("signature")
    if (
        not isinstance(signature, str)
        or len(signature) != 64
        or not all(c in "0123456789abcdef" for c in signature)
    ):
        raise InvalidInput(
            "'signature' must be the win's signature (64 hexadecimal digits).",
            details={"field": "signature"},
        )
    return Win(
        prize_id=_int(data, "packet"),
        round_id=_int(data, "round"),
        amount=_int(data, "amount"),
        sponsor_id=_int(data, "sponsor"),
        signature=signature,
    )


def shares_from(data: Mapping[str, Any]) -> tuple[int, int, str]:
    greeting = data.get("greeting") or ""
    if not isinstance(greeting, str) or len(greeting) > 100:
        raise InvalidInput(
            "'greeting' is text of at most 100 characters.", details={"field": "greeting"}
        )
    return _int(data, "packet"), _int(data, "conversation"), greeting


def shares_json(sent: SharesSent) -> dict[str, Any]:
    return {
        "packet": sent.prize_id,
        "redpacket": sent.redpacket_id,
        "shares": sent.shares,
        "amount": sent.amount,
        "duplicate": sent.duplicate,
    }


def opened_json(opened: Opened) -> dict[str, Any]:
    return {
        "packet": opened.prize_id,
        "amount": opened.amount,
        "kind": opened.kind,
        "extra_shares": opened.extra_shares,
        "extra_amount": opened.extra_amount,
        "credited": opened.credited,
        "delivery": opened.delivery,
    }


def coupon_json(view: CouponView) -> dict[str, Any]:
    return {
        "packet": view.prize_id,
        "business": view.business,
        "coupon": view.coupon,
        "amount": view.amount,
        "state": view.state,
        "arrives_within_hours": view.arrives_within_hours,
        "can_retry": view.can_retry,
        "attempts": view.attempts,
        "delivered_at": view.delivered_at,
    }
