"""Official accounts: creation (by operators and developers), the server
configuration with its URL verification handshake, secrets, greetings and
keyword replies."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.services.registration import service_identity_create, service_identity_rename
from publicplatform import identifiers, keywords, protocol, transport
from publicplatform.concurrency import console_slot
from publicplatform.exceptions import (
    InvalidArgs,
    ServerUrlRefused,
    ServerVerificationFailed,
    TooManyAccounts,
)
from publicplatform.models import AutoReply, EncryptionMode, MatchKind, OfficialAccount
from wechat_core.errors import InvalidInput

NAME_MAX = 64


@dataclass(frozen=True, slots=True)
class CreatedAccount:
    """A new account and its AppSecret, which is shown this once."""

    account: OfficialAccount
    secret: str


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(f"An account name has 1-{NAME_MAX} characters.")
    return name


@transaction.atomic
def account_create(
    *, name: str, owner_id: int | None, description: str = "", greeting: str = ""
) -> CreatedAccount:
    """A new account with its own service identity; developers may own a few."""
    name = _clean_name(name)
    if owner_id is not None:
        owned = OfficialAccount.objects.filter(owner_id=owner_id).count()
        if owned >= settings.PUBLICPLATFORM_ACCOUNTS_PER_DEVELOPER:
            raise TooManyAccounts()
    secret = identifiers.new_secret()
    account = OfficialAccount.objects.create(
        name=name,
        description=description[:200],
        greeting=greeting[:600],
        appid=identifiers.new_appid(),
        secret_hash=identifiers.secret_hash(secret),
        original_id=identifiers.new_original_id(),
        owner_id=owner_id,
        service_user=service_identity_create(nickname=name),
        token=identifiers.new_token(),
    )
    return CreatedAccount(account=account, secret=secret)


@transaction.atomic
def account_update(
    *, account: OfficialAccount, name: str, description: str, greeting: str
) -> OfficialAccount:
    account.name = _clean_name(name)
    account.description = description.strip()[:200]
    account.greeting = greeting.strip()[:600]
    account.save(update_fields=["name", "description", "greeting"])
    service_identity_rename(user_id=account.service_user_id, nickname=account.name)
    return account


@transaction.atomic
def account_secret_reset(*, account: OfficialAccount) -> str:
    """A new AppSecret (shown once); the old one stops working at once."""
    secret = identifiers.new_secret()
    account.secret_hash = identifiers.secret_hash(secret)
    account.save(update_fields=["secret_hash"])
    return secret


# --- Server configuration and the handshake (reference §1) --------------------------


@dataclass(frozen=True, slots=True)
class Verification:
    """What the handshake sent and how the server answered: shown to the developer
    either way. Never the body: until the server has echoed the echostr, the URL is
    anybody's (an internal page, a third party's API), and showing what it says
    would let any user read it through us."""

    ok: bool
    url: str
    signed_string: str
    signature: str
    echostr: str
    status_code: int | None
    latency_ms: float
    detail: str

    def shown(self) -> dict[str, object]:
        """What the console shows of it."""
        return {
            "status_code": self.status_code,
            "latency_ms": self.latency_ms,
            "signed_string": self.signed_string,
            "signature": self.signature,
        }


def server_url_check(url: str) -> str:
    """An http(s) URL whose host resolves to public addresses (or into a private
    network listed in PUBLICPLATFORM_PRIVATE_SERVER_NETWORKS): refused on save
    with a reason the developer can act on."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServerUrlRefused(
            "The server URL must start with http:// or https:// and name a host."
        )
    if parts.username or parts.password:
        raise ServerUrlRefused("The server URL may not carry a user name or password.")
    # Checked again at every connection (publicplatform.transport), where a name
    # that resolves differently later (DNS rebinding) is caught too.
    default_port = 443 if parts.scheme == "https" else 80
    try:
        transport.allowed_addresses(parts.hostname, parts.port or default_port)
    except transport.AddressRefused as error:
        raise ServerUrlRefused(str(error)) from error
    return url


def server_verify(*, url: str, token: str) -> Verification:
    """GET url?signature&timestamp&nonce&echostr; the server must echo the echostr."""
    timestamp, nonce = protocol.timestamp(), protocol.nonce()
    echostr = str(secrets.randbelow(10**19 - 10**18) + 10**18)
    signature = protocol.sign(token, timestamp, nonce)
    params = {"signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": echostr}
    answer = transport.developer_call(
        method="GET",
        url=url,
        params=params,
        timeout=settings.PUBLICPLATFORM_WEBHOOK_TIMEOUT_SECONDS,
        max_bytes=settings.PUBLICPLATFORM_WEBHOOK_MAX_RESPONSE_BYTES,
    )
    text = answer.body.decode("utf-8-sig", errors="replace").strip()
    ok = answer.error == "" and answer.status_code == 200 and text == echostr
    if answer.error:
        detail = f"{answer.error}: {answer.detail}"
    elif answer.status_code != 200:
        detail = f"HTTP {answer.status_code} (a wrong Token gets 403 from the SDKs)"
    elif not ok:
        detail = "The body is not the echostr we sent."
    else:
        detail = "Verified."
    return Verification(
        ok,
        answer.url,
        protocol.signed_string(token, timestamp, nonce),
        signature,
        echostr,
        answer.status_code,
        round(answer.elapsed_ms, 1),
        detail,
    )


def _check_credentials(token: str, encoding_aes_key: str, mode: str) -> None:
    if not protocol.TOKEN_RE.fullmatch(token):
        raise InvalidArgs("The Token has 3-32 letters and digits.", details={"field": "token"})
    if mode not in EncryptionMode.values:
        raise InvalidArgs("The mode is plain or safe.", details={"field": "encryption_mode"})
    if mode == EncryptionMode.SAFE and not encoding_aes_key:
        raise InvalidArgs("Safe mode needs an EncodingAESKey.", details={"field": "aes_key"})
    if encoding_aes_key:
        try:
            protocol.aes_key(encoding_aes_key)
        except protocol.ProtocolError as error:
            raise InvalidArgs(str(error), details={"field": "encoding_aes_key"}) from error


def account_server_configure(
    *, account: OfficialAccount, server_url: str, token: str, encoding_aes_key: str, mode: str
) -> Verification | None:
    """Save the server configuration once the server passes the handshake (WeChat's
    rule: a configuration that does not verify is not saved). An empty URL turns
    the server off; the account then answers with its keyword replies."""
    if not server_url.strip():
        account.server_url, account.server_verified_at = "", None
        account.save(update_fields=["server_url", "server_verified_at"])
        return None
    _check_credentials(token, encoding_aes_key, mode)
    url = server_url_check(server_url)
    with console_slot(account_id=account.pk):
        verification = server_verify(url=url, token=token)
    if not verification.ok:
        raise ServerVerificationFailed(
            f"Verification failed: {verification.detail}", details=verification.shown()
        )
    account.server_url, account.token = url, token
    account.encoding_aes_key, account.encryption_mode = encoding_aes_key, mode
    account.server_verified_at = timezone.now()
    account.save(
        update_fields=[
            "server_url",
            "token",
            "encoding_aes_key",
            "encryption_mode",
            "server_verified_at",
        ]
    )
    return verification


# --- Keyword replies -------------------------------------------------------------------


def autoreply_add(*, account: OfficialAccount, match: str, pattern: str, reply: str) -> AutoReply:
    if match not in MatchKind.values:
        raise InvalidInput("match is exact, contains or regex.")
    pattern, reply = pattern.strip(), reply.strip()
    if not pattern or len(pattern) > 200 or not reply or len(reply) > 600:
        raise InvalidInput("A rule has a pattern (1-200 characters) and a reply (1-600).")
    if match == MatchKind.REGEX:
        try:
            keywords.pattern_compile(pattern)
        except keywords.PatternRefused as error:
            raise InvalidInput(
                f"The regular expression does not compile: {error}.",
                details={"field": "pattern"},
            ) from error
    rules = AutoReply.objects.filter(account=account)
    if rules.count() >= settings.PUBLICPLATFORM_AUTOREPLY_MAX_RULES:
        raise InvalidInput(f"At most {settings.PUBLICPLATFORM_AUTOREPLY_MAX_RULES} rules.")
    position = (rules.order_by("-position").values_list("position", flat=True).first() or 0) + 1
    return AutoReply.objects.create(
        account=account, match=match, pattern=pattern, reply=reply, position=position
    )


def autoreply_delete(*, account: OfficialAccount, rule_id: int) -> None:
    AutoReply.objects.filter(account=account, pk=rule_id).delete()
