"""Errors of the official accounts platform (codes in docs/api.md).

Each carries our `code` and HTTP status (the web client's API and the developer
console) and the WeChat `errcode` that the developer REST API answers with
(reference §4; always with HTTP 200 there).
"""

from __future__ import annotations

from typing import ClassVar

from wechat_core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionRefused,
    RateLimited,
    ServiceError,
)


class PlatformError(ServiceError):
    errcode: ClassVar[int] = -1
    code = "platform_error"
    default_message = "system error"


class InvalidArgs(PlatformError, InvalidInput):
    errcode = 40035
    code = "invalid"
    default_message = "invalid args"


class InvalidGrantType(InvalidArgs):
    errcode = 40002
    default_message = "invalid grant_type: use client_credential"


class InvalidAppId(InvalidArgs):
    errcode = 40013
    default_message = "invalid appid"


class InvalidSecret(InvalidArgs):
    errcode = 40125
    default_message = "invalid appsecret"


class AccessTokenMissing(InvalidArgs):
    errcode = 41001
    default_message = "access_token missing: add ?access_token= from /cgi-bin/token"


class AccessTokenInvalid(InvalidArgs):
    # WeChat answers a token it does not know with 40001 ("invalid credential,
    # access_token is invalid or not latest"); the SDKs fetch a new one on it.
    errcode = 40001
    default_message = "invalid credential: access_token not issued by this platform"


class AppIdMissing(InvalidArgs):
    errcode = 41002
    default_message = "appid missing: add ?appid= (the account's wx… id)"


class SecretMissing(InvalidArgs):
    errcode = 41004
    default_message = "appsecret missing: add ?secret= (the account's AppSecret)"


class RequireGet(InvalidArgs):
    errcode = 43001
    default_message = "require GET method"


class RequirePost(InvalidArgs):
    errcode = 43002
    default_message = "require POST method"


class AccessTokenExpired(InvalidArgs):
    errcode = 42001
    default_message = "access_token expired: fetch a new one from /cgi-bin/token"


class InvalidOpenid(InvalidArgs):
    errcode = 40003
    default_message = "invalid openid: no follower of this account has it"


class InvalidMessageType(InvalidArgs):
    errcode = 40008
    default_message = "invalid message type"


class InvalidTemplateId(InvalidArgs):
    errcode = 40037
    default_message = "invalid template_id"


class InvalidTag(InvalidArgs):
    errcode = 40050
    default_message = "invalid tag: this platform has no follower tags; use is_to_all or mass/send"


class BadButtonCount(InvalidArgs):
    errcode = 40016
    default_message = "invalid button size: 1-3 top-level buttons"


class BadSubButtonCount(InvalidArgs):
    errcode = 40017
    default_message = "invalid sub button size: at most 5 sub_button each"


class EmptyBody(InvalidArgs):
    errcode = 44002
    default_message = "empty post data"


class MalformedJson(InvalidArgs):
    errcode = 47001
    default_message = "data format error: the body is not a JSON object"


class BodyTooLarge(InvalidArgs):
    errcode = 45002
    default_message = "content size out of limit"


class NotAFollower(PlatformError, PermissionRefused):
    errcode = 43004
    code = "not_following"
    default_message = "require subscribe: the user does not follow this account"


class OutsideWindow(PlatformError, PermissionRefused):
    errcode = 45015
    code = "outside_window"
    default_message = "response out of time limit or subscription is canceled"


class CustomLimitReached(PlatformError, RateLimited):
    errcode = 45047
    code = "rate_limited"
    default_message = "out of response count limit"


class QuotaReached(PlatformError, RateLimited):
    errcode = 45009
    code = "rate_limited"
    default_message = "reach max api daily quota limit"


class ClientMsgIdExists(PlatformError, Conflict):
    errcode = 45065
    default_message = "clientmsgid exist: the same mass send was submitted within 24 hours"


class MenuNotFound(PlatformError, NotFound):
    errcode = 46003
    code = "menu_not_found"
    default_message = "menu no exist"


class ApiUnauthorized(PlatformError, PermissionRefused):
    errcode = 48001
    code = "forbidden"
    default_message = "api unauthorized"


class AccountNotFound(PlatformError, NotFound):
    errcode = 40013
    code = "official_account_not_found"
    default_message = "No such official account."


class UnknownMenuButton(PlatformError, InvalidInput):
    errcode = 40035
    code = "unknown_menu_button"
    default_message = "The account's menu has no such button."


class ServerUrlRefused(PlatformError, InvalidInput):
    code = "server_url_refused"
    default_message = "The server URL must be an http(s) URL of a public host."


class ServerVerificationFailed(PlatformError, InvalidInput):
    code = "server_verification_failed"
    default_message = "The server did not answer the verification with the echostr."


class ServerNotConfigured(PlatformError, InvalidInput):
    code = "server_not_configured"
    default_message = "Configure and verify a server first."


class ConsoleBusy(PlatformError, RateLimited):
    code = "console_busy"
    default_message = "Tests or verifications of this account's server are running already."


class TooManyAccounts(PlatformError, Conflict):
    code = "too_many_accounts"
    default_message = "You have as many official accounts as a developer may."
