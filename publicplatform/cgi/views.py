"""/cgi-bin/ endpoints: thin views that read WeChat-style requests, call one
service or selector, and answer WeChat-style.

Why plain Django views and not DRF: this protocol is not our REST API. Every
answer is HTTP 200 with {errcode, errmsg}; JSON bodies come with no
Content-Type (both SDKs send none); nothing is negotiated. DRF's parsers,
renderers and error handler would each have to be overridden to undo its
conventions. `endpoint` does the common part: method, access token, a bounded
JSON body, a request id in every error, and the error mapping.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from publicplatform import selectors
from publicplatform.exceptions import (
    ApiUnauthorized,
    BodyTooLarge,
    EmptyBody,
    MalformedJson,
    PlatformError,
    RequireGet,
    RequirePost,
)
from publicplatform.models import OfficialAccount
from publicplatform.services import developer_api, mass, menus
from wechat_core.api.request import client_ip
from wechat_core.jsoninput import json_load

logger = logging.getLogger(__name__)
Handler = Callable[[HttpRequest, OfficialAccount, dict[str, Any]], dict[str, Any]]
OK: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}


def request_id() -> str:
    """Like WeChat's `rid: 65d38b69-62497c5f-7e6c18da`."""
    return "-".join(secrets.token_hex(4) for _ in range(3))


def _answer(data: dict[str, Any]) -> JsonResponse:
    return JsonResponse(data, json_dumps_params={"ensure_ascii": False})


def _error(error: PlatformError, rid: str, path: str) -> JsonResponse:
    logger.info("cgi %s errcode=%s rid=%s", path, error.errcode, rid)
    return _answer({"errcode": error.errcode, "errmsg": f"{error.message} rid: {rid}"})


def _body(request: HttpRequest) -> dict[str, Any]:
    """The JSON object in the body, whatever the Content-Type says."""
    limit = settings.PUBLICPLATFORM_API_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise BodyTooLarge(f"content size out of limit: the body is limited to {limit} bytes")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise BodyTooLarge(f"content size out of limit: the body is limited to {limit} bytes")
    if not raw.strip():
        raise EmptyBody()
    try:
        data = json_load(raw.decode("utf-8"))  # a refused string is a format error too
    except (ValueError, UnicodeDecodeError) as error:
        raise MalformedJson(f"data format error: {str(error)[:80]}") from error
    if not isinstance(data, dict):
        raise MalformedJson()
    return data


def _wrong_method(methods: tuple[str, ...], used: str) -> PlatformError:
    """WeChat's 43001 for an endpoint read with GET, 43002 for one that takes POST."""
    error = RequirePost if "POST" in methods else RequireGet
    return error(f"{error.default_message}: {used[:10]} is not {' or '.join(methods)}")


def endpoint(
    methods: tuple[str, ...], *, token: bool = True, body: bool = False
) -> Callable[[Handler], Callable[[HttpRequest], HttpResponse]]:
    def decorate(handler: Handler) -> Callable[[HttpRequest], HttpResponse]:
        @csrf_exempt
        def view(request: HttpRequest) -> HttpResponse:
            rid = request_id()
            try:
                if request.method not in methods:
                    raise _wrong_method(methods, request.method or "")
                account = (
                    developer_api.token_check(access_token=request.GET.get("access_token", ""))
                    if token
                    else None
                )
                data = _body(request) if body else {}
                return _answer(handler(request, account, data))  # type: ignore[arg-type]
            except PlatformError as error:
                return _error(error, rid, request.path)
            except Exception:
                logger.exception("cgi %s failed rid=%s", request.path, rid)
                return _answer({"errcode": -1, "errmsg": f"system error rid: {rid}"})

        view.__name__ = handler.__name__
        return view

    return decorate


@endpoint(("GET",), token=False)
def token(request: HttpRequest, account: OfficialAccount, data: dict[str, Any]) -> dict[str, Any]:
    issued = developer_api.token_issue(
        grant_type=request.GET.get("grant_type", ""),
        appid=request.GET.get("appid", ""),
        secret=request.GET.get("secret", ""),
        ip=client_ip(request),
    )
    return {"access_token": issued.access_token, "expires_in": issued.expires_in}


@endpoint(("POST",), body=True)
def custom_send(
    request: HttpRequest, account: OfficialAccount, data: dict[str, Any]
) -> dict[str, Any]:
    developer_api.custom_send(account=account, data=data)
    return OK


@endpoint(("POST",), body=True)
def template_send(
    request: HttpRequest, account: OfficialAccount, data: dict[str, Any]
) -> dict[str, Any]:
    return {**OK, "msgid": developer_api.template_send(account=account, data=data)}


def _mass(account: OfficialAccount, data: dict[str, Any], *, to_all: bool) -> dict[str, Any]:
    job = mass.mass_submit(account=account, data=data, to_all_call=to_all)
    return {
        "errcode": 0,
        "errmsg": "send job submission success",
        "msg_id": job.pk,
        "msg_data_id": job.pk,
    }


@endpoint(("POST",), body=True)
def mass_sendall(
    request: HttpRequest, account: OfficialAccount, data: dict[str, Any]
) -> dict[str, Any]:
    return _mass(account, data, to_all=True)


@endpoint(("POST",), body=True)
def mass_send(
    request: HttpRequest, account: OfficialAccount, data: dict[str, Any]
) -> dict[str, Any]:
    return _mass(account, data, to_all=False)


@endpoint(("GET",))
def user_info(
    request: HttpRequest, account: OfficialAccount, data: dict[str, Any]
) -> dict[str, Any]:
    return selectors.follower_info(
        account=account, openid=request.GET.get("openid", ""), lang=request.GET.get("lang", "zh_CN")
    )


@endpoint(("POST",), body=True)
def user_info_batchget(
    request: HttpRequest, account: OfficialAccount, data: dict[str, Any]
) -> dict[str, Any]:
    infos = selectors.followers_info(account=account, user_list=data.get("user_list"))
    return {"user_info_list": infos}


@endpoint(("GET",))
def user_get(
    request: HttpRequest, account: OfficialAccount, data: dict[str, Any]
) -> dict[str, Any]:
    page = selectors.followers_page(account=account, next_openid=request.GET.get("next_openid", ""))
    answer: dict[str, Any] = {"total": page.total, "count": len(page.openids)}
    if page.openids:
        answer["data"] = {"openid": page.openids}
    answer["next_openid"] = page.next_openid
    return answer


@endpoint(("POST",), body=True)
def menu_create(
    request: HttpRequest, account: OfficialAccount, data: dict[str, Any]
) -> dict[str, Any]:
    menus.menu_set(account=account, data=data)
    return OK


@endpoint(("GET",))
def menu_get(
    request: HttpRequest, account: OfficialAccount, data: dict[str, Any]
) -> dict[str, Any]:
    return {"menu": {"button": selectors.menu_get(account=account)}}


@endpoint(("GET", "POST"))
def menu_delete(
    request: HttpRequest, account: OfficialAccount, data: dict[str, Any]
) -> dict[str, Any]:
    menus.menu_delete(account=account)
    return OK


@csrf_exempt
def unknown(request: HttpRequest, path: str) -> HttpResponse:
    return _error(
        ApiUnauthorized(f"api unauthorized: /cgi-bin/{path[:80]} is not offered by this platform"),
        request_id(),
        request.path,
    )
