"""HTTP middleware shared by every app."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class RequestBodyLimitMiddleware:
    """Refuse bodies over the configured size before any view parses them.

    Multipart uploads get UPLOAD_MAX_BYTES, everything else API_MAX_BODY_BYTES.
    Bodies without a Content-Length are bounded by the parsers instead.
    Deliberately sync-only: see its place in settings.MIDDLEWARE.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(settings.REQUEST_BODY_LIMIT_SELF_CHECKED_PREFIXES):
            return self.get_response(request)  # these views bound their bodies themselves
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse(
                {"code": "invalid", "message": "Content-Length is not a number.", "details": {}},
                status=400,
            )
        content_type = request.META.get("CONTENT_TYPE", "")
        limit = (
            settings.UPLOAD_MAX_BYTES
            if content_type.startswith("multipart/form-data")
            else settings.API_MAX_BODY_BYTES
        )
        if length > limit:
            return JsonResponse(
                {
                    "code": "payload_too_large",
                    "message": f"The request body is {length} bytes; the limit is {limit}.",
                    "details": {"limit": limit},
                },
                status=413,
            )
        return self.get_response(request)
