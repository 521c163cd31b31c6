"""Operator pages (staff only) and the /metrics endpoint: parse, call a selector, render."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from prometheus_client import CONTENT_TYPE_LATEST

from monitoring.dashboards import RANGES, dashboard_data
from monitoring.exposition import metrics_text
from monitoring.selectors import alert_events_recent, alert_get, alerts_open, drills_recent
from wechat_core.api.errors import error_body

ALERT_HISTORY_ROWS = 200


def _token_ok(request: HttpRequest) -> bool:
    expected = settings.MONITORING_METRICS_TOKEN
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), expected.encode())
    )


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus scrapes with `Authorization: Bearer <MONITORING_METRICS_TOKEN>`;
    operators may look with their staff session."""
    user = getattr(request, "user", None)
    if not (_token_ok(request) or (user is not None and user.is_active and user.is_staff)):
        response = JsonResponse(
            error_body("forbidden", "Send the metrics bearer token, or log in as staff."),
            status=403,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)


def _page(request: HttpRequest, page: str, name: str = "") -> HttpResponse:
    return render(
        request,
        "monitoring/dashboard.html",
        {
            "page": page,
            "name": name,
            "ranges": list(RANGES),
            "refresh_seconds": settings.MONITORING_DASHBOARD_REFRESH_SECONDS,
        },
    )


@staff_member_required
def overview(request: HttpRequest) -> HttpResponse:
    return _page(request, "overview")


@staff_member_required
def module_page(request: HttpRequest, module: str) -> HttpResponse:
    return _page(request, "module", module)


@staff_member_required
def version_page(request: HttpRequest, version: str) -> HttpResponse:
    return _page(request, "version", version)


def data(request: HttpRequest) -> HttpResponse:
    user = getattr(request, "user", None)
    if user is None or not (user.is_active and user.is_staff):
        return JsonResponse(error_body("forbidden", "Operators only."), status=403)
    page = request.GET.get("page", "overview")
    if page not in ("overview", "module", "version"):
        return JsonResponse(error_body("invalid", "page: overview, module or version."), status=400)
    return JsonResponse(
        dashboard_data(
            page=page,
            name=request.GET.get("name", "")[:120],
            range_name=request.GET.get("range", "1h"),
        )
    )


@staff_member_required
def alerts(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "monitoring/alerts.html",
        {
            "open": alerts_open(),
            "events": alert_events_recent(limit=ALERT_HISTORY_ROWS),
        },
    )


@staff_member_required
def alert_detail(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = alert_get(alert_id=alert_id)
    return render(
        request,
        "monitoring/alert.html",
        {
            "alert": alert,
            "events": alert.events.all(),
            "notifications": alert.notifications.select_related("channel"),
        },
    )


@staff_member_required
def drills(request: HttpRequest) -> HttpResponse:
    return render(request, "monitoring/drills.html", {"drills": drills_recent(limit=100)})
