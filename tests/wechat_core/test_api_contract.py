"""The API contract: every operation of /api/schema/, answered for real, matches it.

One walk through the whole API against a real daphne process and a Celery
worker, with real data (friends, chats, groups, uploads, an official account,
features edited by an operator, flag pushes, a client too old for groups),
answers 2xx and 4xx alike. Each answer is checked by schemathesis against the
operation it came from: status code, content type, headers and body, with every
object of the schema closed, so that a field the server sends and the schema
does not name fails too. A client generated from the schema must be able to
read every answer; the fuzzing in test_api_schema.py cannot reach most of the
2xx answers, which need data that only a sequence of valid calls builds.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from PIL import Image
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import User
from devtools.processes import ServerProcess, wait_until_idle
from publicplatform.services.menus import menu_set
from tests.factories import (
    PASSWORD,
    Session,
    fund_wallet,
    login_session,
    make_friends,
    make_official_account,
    make_user,
    send_request,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@dataclass
class Contract:
    """Calls the live server and checks every answer against its operation."""

    schema: Any
    base_url: str
    failures: list[str] = field(default_factory=list)
    answered: set[tuple[str, str]] = field(default_factory=set)  # operations seen with a 2xx
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def call(
        self,
        operation_name: str,
        session: Session | None,
        status: int,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        **path_parameters: Any,
    ) -> httpx.Response:
        method, path = operation_name.split(" ")
        request = self.client.build_request(
            method,
            self.base_url + path.format(**path_parameters),
            params=params,
            json=json,
            files=files,
            data=data,
            headers=session.headers if session else {},
        )
        request.read()  # a multipart body is a stream; the checks read the request again
        response = self.client.send(request)
        where = f"{method} {path} -> {response.status_code}"
        if response.status_code != status:
            self.failures.append(f"{where}: expected {status}: {response.text[:300]}")
        try:
            operation = self.schema[path][method]
        except LookupError:
            self.failures.append(f"{method} {path}: not in the schema")
            return response
        case = operation.Case(path_parameters=path_parameters or None, query=params)
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup) as error:  # every failed check of one answer
            self.failures.append(f"{where}:\n{error}")
        if 200 <= response.status_code < 300:
            self.answered.add((method.upper(), path))
        return response


def png(size: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (7, 193, 96)).save(buffer, format="PNG")
    return buffer.getvalue()


def device(name: str = "contract") -> dict[str, str]:
    return {"platform": "web", "client_version": "3.0.0", "name": name}


def closed(schema: Any) -> Any:
    """The schema with every object closed to fields it does not name, so that a
    field the server sends but the schema leaves out is a failure too."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            closed(value)
    elif isinstance(schema, list):
        for value in schema:
            closed(value)
    return schema


@pytest.fixture(scope="module")
def shake_server(live_env: dict[str, str], live_log_dir: Path) -> Iterator[ServerProcess]:
    from tests.shake.conftest import start_shake_server

    server = start_shake_server(live_env, live_log_dir, "shake-contract")
    yield server
    server.stop()


@pytest.fixture
def contract(asgi_servers: list[ServerProcess]) -> Iterator[Contract]:
    url = asgi_servers[0].url
    raw = httpx.get(f"{url}/api/schema/", headers={"Accept": "application/json"}).json()
    contract = Contract(schemathesis.openapi.from_dict(closed(raw)), url)
    yield contract
    contract.client.close()


def _accounts(api: Contract, alice: Session) -> None:
    api.call(
        "POST /api/accounts/register",
        None,
        201,
        json={
            "email": "newcomer@example.com",
            "password": "correct-horse-battery",
            "nickname": "Newcomer",
            "device": device(),
        },
    )
    again = api.call(
        "POST /api/accounts/login",
        None,
        200,
        json={
            "identifier": alice.user.email,
            "password": "correct-horse-battery",
            "device": {**device("second"), "device_uuid": str(uuid.uuid4())},
        },
    )
    api.call("GET /api/accounts/me", alice, 200)
    # A password change logs out the user's other devices: a user of its own.
    changer = login_session(make_user())
    change = {"old_password": PASSWORD, "new_password": "a-new-horse-battery"}
    api.call("POST /api/accounts/me/password", changer, 200, json=change)
    api.call("POST /api/accounts/me/password", changer, 403, json=change)  # old one now wrong
    api.call(
        "PATCH /api/accounts/me",
        alice,
        200,
        json={"region": "Shenzhen", "signature": "hi", "discoverable_by_phone": False},
    )
    api.call(
        "PUT /api/accounts/me/avatar",
        alice,
        200,
        files={"avatar": ("me.png", png(), "image/png")},
    )
    api.call("DELETE /api/accounts/me/avatar", alice, 200)
    api.call(
        "PUT /api/accounts/me/avatar",
        alice,
        200,
        files={"avatar": ("me.png", png(), "image/png")},
    )
    api.call("GET /api/accounts/devices", alice, 200)
    api.call(
        "DELETE /api/accounts/devices/{device_id}",
        alice,
        204,
        device_id=again.json()["device"]["id"],
    )
    api.call("DELETE /api/accounts/devices/{device_id}", alice, 404, device_id=999999)
    leaving = make_user()
    api.call(
        "PUT /api/accounts/me/wechat-id",
        login_session(leaving),
        200,
        json={"wechat_id": "leaving_user"},
    )
    api.call("POST /api/accounts/logout-all", login_session(leaving), 200)
    api.call("POST /api/accounts/logout", login_session(leaving), 204)
    api.call("GET /api/accounts/me", None, 401)


def _contacts(api: Contract, alice: Session, bob: User) -> None:
    api.call("GET /api/contacts/search", alice, 200, params={"q": "bob_contract"})
    api.call("GET /api/contacts/friends", alice, 200)
    api.call("GET /api/contacts/friends/{user_id}", alice, 200, user_id=bob.pk)
    api.call(
        "PATCH /api/contacts/friends/{user_id}",
        alice,
        200,
        json={"remark": "Bobby"},
        user_id=bob.pk,
    )
    gone = make_user()
    make_friends(alice.user, gone)
    api.call("DELETE /api/contacts/friends/{user_id}", alice, 204, user_id=gone.pk)
    api.call("GET /api/contacts/friends/{user_id}", alice, 404, user_id=gone.pk)
    # requests: one left pending, one that makes friends at once, one accepted, one declined
    api.call(
        "POST /api/contacts/requests",
        alice,
        201,
        json={"to_user_id": make_user().pk, "greeting": "hello"},
    )
    asker = make_user()
    send_request(asker, alice.user)
    api.call("POST /api/contacts/requests", alice, 201, json={"to_user_id": asker.pk})
    accepted = send_request(make_user(), alice.user)
    declined = send_request(make_user(), alice.user)
    api.call("GET /api/contacts/requests", alice, 200, params={"direction": "incoming"})
    api.call("GET /api/contacts/requests", alice, 200, params={"direction": "outgoing"})
    api.call(
        "POST /api/contacts/requests/{request_id}/accept",
        alice,
        200,
        json={"remark": "met at the fair"},
        request_id=accepted.pk,
    )
    api.call(
        "POST /api/contacts/requests/{request_id}/decline",
        alice,
        200,
        request_id=declined.pk,
    )
    api.call(
        "POST /api/contacts/requests/{request_id}/accept",
        alice,
        409,
        json={},
        request_id=declined.pk,
    )
    pest = make_user()
    api.call("PUT /api/contacts/blocks/{user_id}", alice, 200, user_id=pest.pk)
    api.call("GET /api/contacts/blocks", alice, 200)
    api.call("DELETE /api/contacts/blocks/{user_id}", alice, 204, user_id=pest.pk)
    api.call("DELETE /api/contacts/blocks/{user_id}", alice, 404, user_id=pest.pk)


def _messaging(api: Contract, alice: Session, bob: Session, carol: User) -> None:
    chat = api.call(
        "POST /api/messaging/conversations/direct",
        alice,
        200,
        json={"user_id": bob.user.pk},
    ).json()["conversation"]["id"]

    def send(session: Session, content: dict[str, Any], status: int = 201) -> Any:
        body = {"conversation": chat, "client_msg_id": uuid.uuid4().hex, "content": content}
        return api.call("POST /api/messaging/send", session, status, json=body).json()

    first = send(alice, {"kind": "text", "text": "hello", "mentions": [bob.user.pk]})
    api.call(
        "POST /api/messaging/send",
        alice,
        200,
        json={
            "conversation": chat,
            "client_msg_id": first["client_msg_id"],
            "content": {"text": "x"},
        },
    )
    send(bob, {"text": "a reply", "reply_to": first["id"]})
    image = api.call(
        "POST /api/messaging/uploads",
        alice,
        201,
        data={"kind": "image"},
        files={"file": ("cat.png", png(), "image/png")},
    ).json()
    pdf = api.call(
        "POST /api/messaging/uploads",
        alice,
        201,
        data={"kind": "file"},
        files={"file": ("report.pdf", b"%PDF-1.7 minimal", "application/pdf")},
    ).json()
    send(alice, {"kind": "image", "attachment": image["id"], "text": "look"})
    send(alice, {"kind": "file", "attachment": pdf["id"]})
    api.call(
        "GET /api/messaging/attachments/{attachment_id}",
        bob,
        200,
        attachment_id=image["id"],
    )
    api.call(
        "GET /api/messaging/attachments/{attachment_id}",
        bob,
        200,
        attachment_id=pdf["id"],
    )
    api.call(
        "GET /api/messaging/attachments/{attachment_id}",
        bob,
        404,
        attachment_id=str(uuid.uuid4()),
    )
    api.call(
        "POST /api/messaging/uploads",
        alice,
        400,
        data={"kind": "image"},
        files={"file": ("fake.png", b"not an image", "image/png")},
    )
    send(alice, {"text": ""}, status=400)
    api.call("GET /api/messaging/search", bob, 200, params={"q": "look"})
    api.call("GET /api/messaging/search", bob, 400, params={"q": ""})
    hidden = send(alice, {"kind": "text", "text": "only for alice"})
    api.call("POST /api/messaging/hide", bob, 200, json={"message": hidden["id"]})
    api.call("POST /api/messaging/hide", bob, 404, json={"message": 10**12})
    api.call(
        "PATCH /api/messaging/conversations/{conversation_id}/settings",
        bob,
        200,
        json={"muted": True, "pinned": True},
        conversation_id=chat,
    )
    reports = [{"transport": "websocket", "ok": True, "connect_ms": 120, "rtt_ms": [30, 41]}]
    api.call("POST /api/messaging/link-stats", alice, 200, json={"reports": reports})
    api.call("POST /api/messaging/link-stats", alice, 400, json={"reports": "x"})
    api.call("POST /api/messaging/recall", alice, 200, json={"message": first["id"]})
    api.call("GET /api/messaging/conversations", bob, 200)
    api.call("GET /api/messaging/conversations", bob, 200, params={"page_size": 1})
    api.call(
        "GET /api/messaging/conversations/{conversation_id}",
        bob,
        200,
        conversation_id=chat,
    )
    api.call(
        "GET /api/messaging/conversations/{conversation_id}/messages",
        bob,
        200,
        params={"limit": 3},
        conversation_id=chat,
    )
    api.call(
        "GET /api/messaging/conversations/{conversation_id}/messages",
        bob,
        200,
        params={"before": 3},
        conversation_id=chat,
    )
    api.call("POST /api/messaging/read", bob, 200, json={"conversation": chat, "seq": 2})
    api.call(
        "POST /api/messaging/receipts",
        bob,
        200,
        json={"messages": [{"id": first["id"], "shown_ago_ms": 120}]},
    )
    page = api.call("GET /api/messaging/sync", bob, 200, params={"timeout": 0}).json()
    api.call(
        "GET /api/messaging/sync",
        bob,
        200,
        params={"key": page["key"], "limit": 10, "timeout": 1},
    )
    api.call("GET /api/messaging/sync", bob, 400, params={"timeout": 99})

    group = api.call(
        "POST /api/messaging/groups",
        alice,
        201,
        json={"name": "Team", "members": [bob.user.pk]},
    ).json()
    group_id = group["conversation"]["id"]
    api.call(
        "PATCH /api/messaging/groups/{conversation_id}",
        alice,
        200,
        json={"name": "The team", "announcement": "Be nice."},
        conversation_id=group_id,
    )
    api.call(
        "POST /api/messaging/groups/{conversation_id}/members",
        alice,
        200,
        json={"user_ids": [carol.pk]},
        conversation_id=group_id,
    )
    api.call(
        "PUT /api/messaging/groups/{conversation_id}/admins/{user_id}",
        alice,
        204,
        conversation_id=group_id,
        user_id=bob.user.pk,
    )
    api.call(
        "DELETE /api/messaging/groups/{conversation_id}/admins/{user_id}",
        alice,
        204,
        conversation_id=group_id,
        user_id=bob.user.pk,
    )
    api.call(
        "DELETE /api/messaging/groups/{conversation_id}/members/{user_id}",
        alice,
        204,
        conversation_id=group_id,
        user_id=carol.pk,
    )
    api.call(
        "POST /api/messaging/groups/{conversation_id}/leave",
        bob,
        204,
        conversation_id=group_id,
    )
    page = api.call(
        "GET /api/messaging/sync", bob, 200, params={"key": page["key"], "timeout": 0}
    ).json()


def _official_accounts(api: Contract, alice: Session) -> None:
    account, _ = make_official_account(name="Contract News")
    menu_set(
        account=account,
        data={
            "button": [
                {"type": "click", "name": "Today", "key": "TODAY"},
                {
                    "name": "More",
                    "sub_button": [{"type": "view", "name": "Site", "url": "https://example.com/"}],
                },
            ]
        },
    )
    api.call("GET /api/official/search", alice, 200, params={"q": "Contract News"})
    card = api.call(
        "POST /api/official/accounts/{account_id}/follow",
        alice,
        200,
        account_id=account.pk,
    ).json()
    api.call("GET /api/official/following", alice, 200)
    api.call("GET /api/official/accounts/{account_id}", alice, 200, account_id=account.pk)
    api.call(
        "GET /api/official/conversations/{conversation_id}",
        alice,
        200,
        conversation_id=card["conversation_id"],
    )
    api.call(
        "POST /api/official/accounts/{account_id}/menu",
        alice,
        200,
        json={"type": "view", "url": "https://example.com/"},
        account_id=account.pk,
    )
    api.call(
        "POST /api/official/accounts/{account_id}/menu",
        alice,
        200,
        json={"type": "click", "key": "TODAY"},
        account_id=account.pk,
    )
    api.call(
        "POST /api/official/accounts/{account_id}/unfollow",
        alice,
        200,
        account_id=account.pk,
    )
    api.call("GET /api/official/accounts/{account_id}", alice, 404, account_id=999999)


def _gray_release(api: Contract, operator: Session, user: Session) -> None:
    api.call("GET /api/flags", user, 200)
    rules = {
        "description": "A new chat list",
        "client_visible": True,
        "percentage_bp": 2500,
        "allow": [str(user.user.pk)],
        "deny": [],
        "platforms": ["web", "ios"],
        "version_ranges": [{"min_version": "2.0.0", "max_version": None}],
        "time_windows": [{"starts_at": "2026-01-01T00:00:00Z", "ends_at": None}],
        "stages": [
            {"percentage_bp": 5000, "soak_minutes": 10},
            {"percentage_bp": 10000, "soak_minutes": 10},
        ],
        "guard": {"margin_bp": 200, "min_sample": 100, "window_seconds": 600, "action": "pause"},
        "comment": "first cut",
    }
    api.call(
        "POST /api/grayrelease/features",
        operator,
        201,
        json={"key": "chat.new_list", **rules},
    )
    api.call("POST /api/grayrelease/features", user, 403, json={"key": "nope"})
    api.call("GET /api/grayrelease/features", operator, 200)
    feature = api.call(
        "GET /api/grayrelease/features/{key}", operator, 200, key="chat.new_list"
    ).json()
    api.call(
        "PUT /api/grayrelease/features/{key}",
        operator,
        200,
        json={**rules, "revision": feature["revision"]},
        key="chat.new_list",
    )
    api.call(
        "PATCH /api/grayrelease/features/{key}",
        operator,
        200,
        json={"percentage_bp": 3000},
        key="chat.new_list",
    )
    api.call(
        "PATCH /api/grayrelease/features/{key}",
        operator,
        409,
        json={"percentage_bp": 10, "revision": 1},
        key="chat.new_list",
    )
    api.call(
        "POST /api/grayrelease/features/{key}/schedule",
        operator,
        200,
        json={"action": "start"},
        key="chat.new_list",
    )
    api.call(
        "POST /api/grayrelease/features/{key}/kill-switch",
        operator,
        200,
        json={"killed": True, "comment": "broken"},
        key="chat.new_list",
    )
    api.call("GET /api/flags", user, 200)
    api.call("GET /api/grayrelease/features/{key}/changes", operator, 200, key="chat.new_list")
    api.call(
        "POST /api/grayrelease/preview",
        operator,
        200,
        json={"key": "chat.new_list", "percentage_bp": 5000},
    )
    api.call(
        "DELETE /api/grayrelease/features/{key}",
        operator,
        204,
        json={"comment": "done"},
        key="chat.new_list",
    )
    api.call("GET /api/grayrelease/features/{key}", operator, 404, key="chat.new_list")


def _wallet(api: Contract, alice: Session, alice_user: User) -> None:
    """The wallet, with the payment sandbox as provider (the servers point at it)."""
    api.call("GET /api/wallet", alice, 200)
    topup = api.call(
        "POST /api/wallet/topups", alice, 201, json={"client_id": "contract-1", "amount": 1200}
    ).json()
    api.call(
        "POST /api/wallet/topups", alice, 200, json={"client_id": "contract-1", "amount": 1200}
    )
    api.call("POST /api/wallet/topups", alice, 400, json={"client_id": "contract-2", "amount": 0})
    api.call("GET /api/wallet/topups/{topup_id}", alice, 200, topup_id=topup["id"])
    api.call("GET /api/wallet/topups/{topup_id}", alice, 404, topup_id=topup["id"] + 10_000)
    api.call("POST /api/wallet/withdrawals", alice, 409, json={"client_id": "w-1", "amount": 5000})
    fund_wallet(alice_user, 5000)
    withdrawal = api.call(
        "POST /api/wallet/withdrawals", alice, 201, json={"client_id": "w-2", "amount": 3000}
    ).json()
    api.call(
        "GET /api/wallet/withdrawals/{withdrawal_id}", alice, 200, withdrawal_id=withdrawal["id"]
    )
    api.call("GET /api/wallet/history", alice, 200, params={"page_size": 10})


def _redpackets(api: Contract, alice: Session, bob: Session, alice_user: User) -> None:
    """A red packet in a 1:1 chat: sent (and retried), refused, opened, detailed."""
    from messaging.services.conversations import direct_open

    chat = direct_open(ticket=alice.ticket, user_id=alice.user.pk, peer_id=bob.user.pk)
    fund_wallet(alice_user, 2000)
    api.call("GET /api/redpackets/covers", alice, 200)
    packet = {
        "conversation": chat.pk, "client_id": "rp-1", "kind": "lucky", "total_amount": 500,
        "shares": 1, "greeting": "Happy new year", "cover": "surname", "surname": "Li",
    }  # fmt: skip
    sent = api.call("POST /api/redpackets", alice, 201, json=packet).json()
    api.call("POST /api/redpackets", alice, 200, json=packet)
    api.call("POST /api/redpackets", alice, 400, json=packet | {"client_id": "rp-2", "shares": 2})
    too_much = packet | {"client_id": "rp-3", "total_amount": 20_000}
    api.call("POST /api/redpackets", alice, 409, json=too_much)
    api.call("POST /api/redpackets/{packet_id}/grab", alice, 403, packet_id=sent["packet"])
    api.call("POST /api/redpackets/{packet_id}/grab", bob, 200, packet_id=sent["packet"])
    api.call("GET /api/redpackets/{packet_id}", bob, 200, packet_id=sent["packet"])
    api.call("GET /api/redpackets/{packet_id}", bob, 404, packet_id=sent["packet"] + 10_000)


def _shake(api: Contract, alice: Session, bob: Session, server: ServerProcess) -> None:
    """A round issuing now on a server running the shake engine: shaken until a
    packet, opened (and again), refused for someone else, refused for an unknown packet;
    its extra shares passed on into a chat (sponsor packets only in this round)."""
    import time

    from shake.services.assets import asset_store
    from tests.shake.conftest import sponsor_round

    round_ = sponsor_round(count=20, slices=4)
    sponsor = round_.activity.sponsors.first()
    assert sponsor is not None
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(png, format="PNG")
    sha = asset_store(sponsor_id=sponsor.pk, role="logo", content=png.getvalue()).sha256
    shared_url, api.base_url = api.base_url, server.url
    try:
        _shake_calls(api, alice, bob, time.monotonic() + 60)
        held = {"activity": round_.activity_id, "version": 1, "held": [sha]}
        api.call("GET /api/shake/assets", alice, 200, params={"activity": round_.activity_id})
        api.call("POST /api/shake/assets/held", alice, 200, json=held)
        api.call("POST /api/shake/assets/held", alice, 400, json=held | {"held": ["x"]})
        api.call("GET /api/shake/assets/{sha256}", None, 200, sha256=sha)
        api.call("GET /api/shake/assets/{sha256}", None, 404, sha256="0" * 64)
    finally:
        api.base_url = shared_url


def _coupons(api: Contract, alice: Session, bob: Session) -> None:
    """A coupon of a business (a real local HTTP server) opened by alice: its
    delivery read and retried by her, refused to bob."""
    import time

    from shake.services.activities import business_create
    from tests.shake.conftest import coupon_round, coupons_open
    from tests.support.businesses import BusinessServer

    server = BusinessServer(secret="contract-business").start()
    try:
        business = business_create(
            name="Contract rides", endpoint=server.url, secret="contract-business",
            rate_per_second=50,
        )  # fmt: skip
        [prize_id] = coupons_open(coupon_round(business=business, count=1), [alice])
        api.call("GET /api/shake/coupons/{prize_id}", alice, 200, prize_id=prize_id)
        api.call("POST /api/shake/coupons/{prize_id}/retry", alice, 200, prize_id=prize_id)
        api.call("GET /api/shake/coupons/{prize_id}", bob, 404, prize_id=prize_id)
        api.call("POST /api/shake/coupons/{prize_id}/retry", bob, 404, prize_id=prize_id)
        # The worker delivers it before the business goes away (no retries left behind).
        deadline = time.monotonic() + 120
        while not server.granted:
            assert time.monotonic() < deadline, "the coupon was never delivered"
            time.sleep(0.1)
    finally:
        server.stop()


def _shake_calls(api: Contract, alice: Session, bob: Session, deadline: float) -> None:
    import time

    api.call("GET /api/shake/schedule", alice, 200)  # the countdown, without shaking
    packet = None
    record = None
    while packet is None:  # the server loads the round and reserves within a second or two
        assert time.monotonic() < deadline, "no packet from the live round"
        answer = api.call("POST /api/shake", alice, 200, json={"record": record}).json()
        record, packet = answer["record"], answer["packet"]
    win = {
        "packet": packet["id"], "round": packet["round"], "amount": packet["amount"],
        "sponsor": packet["sponsor"]["id"], "signature": packet["signature"],
    }  # fmt: skip
    prize_id = packet["id"]
    api.call("GET /api/shake/packets/{prize_id}", alice, 404, prize_id=prize_id)  # not opened
    api.call("POST /api/shake/open", alice, 200, json=win)
    api.call("POST /api/shake/open", alice, 200, json=win)
    api.call("GET /api/shake/packets/{prize_id}", alice, 200, prize_id=prize_id)
    api.call("GET /api/shake/packets/{prize_id}", bob, 404, prize_id=prize_id)
    api.call("POST /api/shake/open", bob, 403, json=win)
    api.call("POST /api/shake/open", alice, 400, json=win | {"signature": "x"})
    api.call("POST /api/shake", alice, 400, json={"record": 5})
    from messaging.services.conversations import group_create

    # Extra shares go into a group: a packet in a 1:1 chat has one share.
    friends = [bob.user, make_user(), make_user()]
    for friend in friends[1:]:
        make_friends(alice.user, friend)
    chat = group_create(
        ticket=alice.ticket,
        user_id=alice.user.pk,
        name="Shares",
        member_ids=[friend.pk for friend in friends],
    )
    shares = {"packet": packet["id"], "conversation": chat.pk, "greeting": "Pass it on"}
    api.call("POST /api/shake/shares", bob, 403, json=shares)
    api.call("POST /api/shake/shares", alice, 200, json=shares)
    api.call("POST /api/shake/shares", alice, 200, json=shares)  # the same red packet
    api.call("POST /api/shake/shares", alice, 400, json=shares | {"conversation": "x"})


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_api__every_operation_answered_for_real__matches_the_schema(
    contract: Contract, celery_worker: ServerProcess, shake_server: ServerProcess
) -> None:
    # given: an operator with friends, a pending request and a group member to be
    alice_user = make_user(email="alice@example.com", wechat_id="alice_contract")
    User.objects.filter(pk=alice_user.pk).update(is_staff=True)
    bob_user = make_user(email="bob@example.com", wechat_id="bob_contract")
    carol = make_user()
    make_friends(alice_user, bob_user)
    make_friends(alice_user, carol)
    alice, bob = login_session(alice_user), login_session(bob_user)

    # when: every operation is called, with answers that succeed and answers that refuse
    api = contract
    api.call("GET /api/health", None, 200)
    api.call("GET /api/topology", None, 200)
    _accounts(api, alice)
    _contacts(api, alice, bob_user)
    _messaging(api, alice, bob, carol)
    _official_accounts(api, alice)
    _gray_release(api, alice, bob)
    _wallet(api, alice, alice_user)
    _redpackets(api, alice, bob, alice_user)
    _shake(api, alice, bob, shake_server)
    _coupons(api, alice, bob)
    wait_until_idle(celery_worker)  # the flag pushes, the red packet's credit, the prize's
    # every kind of entry, as a current client and as one too old for groups sees it
    api.call("GET /api/messaging/sync", bob, 200, params={"limit": 1000, "timeout": 0})
    old = login_session(bob_user, client_version="1.9.0")
    api.call("GET /api/messaging/sync", old, 200, params={"limit": 1000, "timeout": 0})

    # then: every answer matched its operation, and no operation went without a 2xx
    assert not api.failures, "\n\n".join(api.failures)
    documented = {
        (method.upper(), path)
        for path, operations in api.schema.raw_schema["paths"].items()
        for method in operations
        if method in {"get", "put", "post", "patch", "delete"}
    }
    assert documented - api.answered == set()
