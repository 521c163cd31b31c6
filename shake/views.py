"""The operators' live-control page (staff only, docs/shake.md "Live control"):
parse the form, call one service, show the outcome on the page."""

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

from shake.exceptions import ControlRefused
from shake.selectors import assets_overview, control_events_recent, control_overview
from shake.services import control
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
