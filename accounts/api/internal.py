"""Calls between data centres (issue 17): the WeChat ID authority's endpoint.

Not part of the client API (left out of the OpenAPI schema): the data centres sign
each call with DATACENTER_SECRET (accounts.services.wechat_ids).
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.services.wechat_ids import wechat_id_allocate_for_peer
from wechat_core.api.errors import error_body
from wechat_core.errors import ServiceError


@csrf_exempt
@require_POST
def wechat_id_claim_for_peer(request: HttpRequest) -> JsonResponse:
    try:
        wechat_id_allocate_for_peer(
            body=request.body, signature=request.headers.get("X-Datacenter-Signature", "")
        )
    except ServiceError as error:
        return JsonResponse(
            error_body(error.code, error.message, error.details), status=error.status
        )
    return JsonResponse({"claimed": True}, status=201)
