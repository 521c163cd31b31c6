"""The operators' live-control page (staff only, docs/shake.md "Live control"):
parse the form, call one service, show the outcome on the page. Also closing an
activity (its budget settled) and uploading a sponsor's asset."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from shake.exceptions import AssetInvalid, ControlRefused, PlanInvalid
from shake.selectors import (
    assets_overview,
    budgets_overview,
    control_events_recent,
    control_overview,
)
from shake.services import control
from shake.services.assets import asset_upload
from shake.services.settlement import activity_close
from wechat_core.errors import ServiceError


def _actor(request: HttpRequest) -> AbstractBaseUser | None:
    return request.user if isinstance(request.user, AbstractBaseUser) else None


@staff_member_required
def control_page(request: HttpRequest) -> HttpResponse:
    overview = control_overview()
    return render(
        request,
        "shake/control.html",
        {
            "activities": overview,
            "assets": assets_overview([activity for activity, _ in overview]),
            "budgets": budgets_overview([activity for activity, _ in overview]),
            "asset_max_bytes": settings.SHAKE_ASSET_MAX_BYTES,
            "asset_types": settings.SHAKE_ASSET_TYPES,
            "assets_online_seconds": settings.SHAKE_ASSETS_ONLINE_SECONDS,
            "events": control_events_recent(),
            "now": timezone.now(),
        },
    )


def _countdown_at(text: str) -> datetime:
    """An ISO time, or a number of seconds from now."""
    text = text.strip()
    try:
        return timezone.now() + timedelta(seconds=float(text))
    except ValueError:
        pass
    parsed = parse_datetime(text)
    if parsed is None:
        raise ControlRefused(
            "The countdown is a time (2026-02-08T22:30:00+08:00) or seconds from now."
        )
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


def _stagger(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise PlanInvalid("The stagger is a whole number of seconds (0, or 60 to 300).") from None


@staff_member_required
@require_POST
def control_command(request: HttpRequest, round_id: int, action: str) -> HttpResponse:
    actor, reason = _actor(request), request.POST.get("reason", "")[:200]
    commands: dict[str, Callable[[], object]] = {
        "start": lambda: control.round_start(round_id=round_id, actor=actor, reason=reason),
        "countdown": lambda: control.round_countdown_set(
            round_id=round_id,
            at=_countdown_at(request.POST.get("at", "")),
            actor=actor,
            reason=reason,
        ),
        "stagger": lambda: control.round_stagger_set(
            round_id=round_id,
            stagger_seconds=_stagger(request.POST.get("stagger", "")),
            actor=actor,
            reason=reason,
        ),
        "pause": lambda: control.round_pause(round_id=round_id, actor=actor, reason=reason),
        "resume": lambda: control.round_resume(round_id=round_id, actor=actor, reason=reason),
        "end": lambda: control.round_end(round_id=round_id, actor=actor, reason=reason),
    }
    command = commands.get(action)
    if command is None:
        messages.error(request, f"Unknown command {action!r}.")
    else:
        try:
            command()
            messages.success(request, f"Round {round_id}: {action} done.")
        except ServiceError as error:
            messages.error(request, f"Round {round_id}: {error.message}")
    return HttpResponseRedirect(reverse("shake-operators:control"))


@staff_member_required
@require_POST
def start_next(request: HttpRequest, activity_id: int) -> HttpResponse:
    try:
        started = control.round_start_next(
            activity_id=activity_id,
            actor=_actor(request),
            reason=request.POST.get("reason", "")[:200],
        )
        messages.success(request, f"Started {started.title}.")
    except ServiceError as error:
        messages.error(request, error.message)
    return HttpResponseRedirect(reverse("shake-operators:control"))


@staff_member_required
@require_POST
def close_activity(request: HttpRequest, activity_id: int) -> HttpResponse:
    try:
        closed = activity_close(
            activity_id=activity_id,
            actor=_actor(request),
            reason=request.POST.get("reason", "")[:200],
        )
        settlement = closed.settlement
        if closed.created:
            messages.success(
                request,
                f"Closed: {settlement.returned} fen back to the funding account, "
                f"{settlement.held_back} fen held back for credits under way.",
            )
        else:
            messages.success(request, f"Closed already on {settlement.at:%Y-%m-%d %H:%M:%S}.")
    except ServiceError as error:
        messages.error(request, error.message)
    return HttpResponseRedirect(reverse("shake-operators:control"))


# Room for the form's other fields and the multipart framing around the file.
_UPLOAD_OVERHEAD_BYTES = 64 * 1024


@staff_member_required
@require_POST
def upload_asset(request: HttpRequest, sponsor_id: int) -> HttpResponse:
    """A logo or background uploaded from the page. A body larger than the asset limit
    is refused before Django reads it (no temporary file of it is written)."""
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    limit = settings.SHAKE_ASSET_MAX_BYTES
    if declared > limit + _UPLOAD_OVERHEAD_BYTES:
        messages.error(request, f"An asset has at most {limit} bytes.")
        return HttpResponseRedirect(reverse("shake-operators:control"))
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise AssetInvalid("Choose an image file to upload.")
        asset = asset_upload(
            sponsor_id=sponsor_id,
            role=request.POST.get("role", ""),
            stream=upload,
            name=upload.name or "upload",
            operator=str(request.user)[:100],
        )
        messages.success(
            request, f"Stored {asset.role} of {asset.sponsor.name}: sha256 {asset.sha256}."
        )
    except ServiceError as error:
        messages.error(request, error.message)
    return HttpResponseRedirect(reverse("shake-operators:control"))
