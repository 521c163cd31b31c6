"""Pushes to real developer servers (WeRoBot and wechatpy's helpers, plain and safe
mode, on loopback): the handshake, replies relayed into the chat, events, retries
with identical plaintext, the failure notice, and servers that misbehave.

The delivery service runs here in the test process, one attempt per call, as the
Celery task runs it (tests/publicplatform/test_live.py runs it in a real worker).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from wechatpy.crypto import WeChatCrypto

from devtools.devservers import DevServer, raw_server, wechatpy_server, werobot_server
from messaging.models import Message, MessageKind
from publicplatform import protocol
from publicplatform.exceptions import ServerVerificationFailed
from publicplatform.models import AttemptOutcome, DeliveryStatus, WebhookDelivery
from publicplatform.services import followers, replies, webhooks
from tests.factories import (
    configure_server,
    login_ticket,
    make_follower,
    make_official_account,
    make_user,
)

pytestmark = pytest.mark.django_db
TOKEN = "testtoken123"


def run_delivery(delivery_id: int) -> WebhookDelivery:
    """Every attempt of a delivery, back to back (the task waits between them)."""
    for _ in range(10):
        if webhooks.delivery_step(delivery_id=delivery_id).retry_in is None:
            break
    return WebhookDelivery.objects.get(pk=delivery_id)


def chat_texts(follower: Any) -> list[str]:
    rows = Message.objects.filter(conversation_id=follower.conversation_id).order_by("seq")
    return [row.body.get("text", "") for row in rows]


def send_text(user: Any, follower: Any, text: str) -> WebhookDelivery:
    from messaging.services.sending import message_send
    from messaging.types import OutgoingContent

    ack = message_send(
        ticket=login_ticket(user),
        user_id=user.pk,
        conversation_id=follower.conversation_id,
        client_msg_id=f"c-{uuid.uuid4().hex}",
        content=OutgoingContent(kind="text", text=text),
    )
    return WebhookDelivery.objects.get(msg_id=ack.message_id)


def dev_server(sdk: str, mode: str, appid: str, aes_key: str) -> AbstractContextManager[DevServer]:
    options: dict[str, Any] = {}
    if mode == "safe":
        options = (
            {"app_id": appid, "aes_key": aes_key}
            if sdk == "werobot"
            else {"appid": appid, "aes_key": aes_key}
        )
    return (
        werobot_server(TOKEN, **options) if sdk == "werobot" else wechatpy_server(TOKEN, **options)
    )


SERVERS = [(sdk, mode) for sdk in ("werobot", "wechatpy") for mode in ("plain", "safe")]


@pytest.fixture(params=SERVERS, ids=[f"{sdk}-{mode}" for sdk, mode in SERVERS])
def configured(request: pytest.FixtureRequest) -> Iterator[tuple[Any, DevServer, str]]:
    sdk, mode = request.param
    account, _ = make_official_account(name=f"{sdk} {mode}")
    aes_key = protocol.new_encoding_aes_key()
    with dev_server(sdk, mode, account.appid, aes_key) as server:
        configure_server(account, url=server.url, token=TOKEN, aes_key=aes_key, mode=mode)
        yield account, server, mode


def test_handshake__sdk_server_with_the_right_token__verifies_and_saves(configured: Any) -> None:
    # given / when: the fixture saved the configuration through the handshake
    account, server, mode = configured
    # then: the server got one GET with a plaintext echostr (also in safe mode), and echoed it
    gets = [r for r in server.received if r.method == "GET"]
    assert len(gets) == 1
    assert gets[0].query["echostr"].isdigit()
    assert gets[0].query["signature"] == protocol.sign(
        TOKEN, gets[0].query["timestamp"], gets[0].query["nonce"]
    )
    assert account.server_verified_at is not None
    assert account.encryption_mode == mode


@pytest.mark.parametrize("sdk", ["werobot", "wechatpy"])
def test_handshake__wrong_token__is_refused_with_what_the_server_said(sdk: str) -> None:
    account, _ = make_official_account()
    with (
        dev_server(sdk, "plain", account.appid, "") as server,
        pytest.raises(ServerVerificationFailed) as refused,
    ):
        configure_server(account, url=server.url, token="anothertoken9")
    assert refused.value.details["status_code"] == 403
    assert refused.value.details["signed_string"]
    assert len(refused.value.details["signature"]) == 40
    account.refresh_from_db()
    assert account.server_url == ""
    assert account.server_verified_at is None


def test_text_message__sdk_server_replies__the_reply_is_in_the_users_chat(configured: Any) -> None:
    # given: Alice follows the account (its server welcomes her)
    account, server, mode = configured
    alice = make_user(nickname="Alice")
    follower = make_follower(alice, account)
    subscribe = WebhookDelivery.objects.get(account=account, event="subscribe")
    assert run_delivery(subscribe.pk).status == DeliveryStatus.SUCCEEDED
    # when: she writes to it
    delivery = run_delivery(send_text(alice, follower, "hi there").pk)
    # then: one attempt, a text reply, relayed as the account into her chat
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.reply_type == "text"
    assert [a.outcome for a in delivery.attempts.all()] == [AttemptOutcome.REPLIED]
    assert chat_texts(follower) == [f"welcome {follower.openid}", "hi there", "echo: hi there"]
    assert delivery.reply_message_id is not None
    reply = Message.objects.get(pk=delivery.reply_message_id)
    assert reply.sender_id == account.service_user_id
    # and: the push was the protocol's: signed query, openid, safe-mode fields
    post = server.posts()[-1]
    assert post.query["openid"] == follower.openid
    assert post.query["signature"] == protocol.sign(
        TOKEN, post.query["timestamp"], post.query["nonce"]
    )
    assert ("encrypt_type" in post.query) == (mode == "safe")
    assert (b"<Encrypt>" in post.body) == (mode == "safe")
    assert post.content_type == "text/xml; charset=utf-8"


def test_menu_click__sdk_server__gets_click_event_and_its_reply_is_relayed(configured: Any) -> None:
    account, _server, _ = configured
    from publicplatform.services.menus import menu_set

    menu_set(
        account=account, data={"button": [{"type": "click", "name": "Good", "key": "V1001_GOOD"}]}
    )
    bob = make_user()
    follower = make_follower(bob, account)
    # when
    followers.menu_tap(
        ticket=login_ticket(bob),
        user_id=bob.pk,
        account_id=account.pk,
        kind="click",
        value="V1001_GOOD",
    )
    # then
    delivery = run_delivery(WebhookDelivery.objects.get(account=account, event="CLICK").pk)
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert chat_texts(follower)[-1] == "clicked V1001_GOOD"


def test_events__subscribe_view_and_unsubscribe__the_xml_of_the_reference_both_sdks_read() -> None:
    # given: an account whose (wechatpy) server answers every push, with a view button
    import re

    import werobot.parser
    from wechatpy import events, parse_message

    from publicplatform.services.menus import menu_set

    account, _ = make_official_account()
    menu_set(
        account=account,
        data={"button": [{"type": "view", "name": "Site", "url": "https://example.com/p?a=1"}]},
    )
    ivan = make_user()
    with wechatpy_server(TOKEN) as server:
        configure_server(account, url=server.url, token=TOKEN)
        # when: Ivan follows, taps the view button, and unfollows
        follower = make_follower(ivan, account)
        url = followers.menu_tap(
            ticket=login_ticket(ivan), user_id=ivan.pk, account_id=account.pk, kind="view",
            value="https://example.com/p?a=1",
        )  # fmt: skip
        followers.account_unfollow(
            ticket=login_ticket(ivan), user_id=ivan.pk, account_id=account.pk
        )
        deliveries = list(WebhookDelivery.objects.filter(account=account).order_by("pk"))
        outcomes = [run_delivery(d.pk).status for d in deliveries]
        bodies = [post.body for post in server.posts()]
    # then: three pushes, each delivered
    assert url == "https://example.com/p?a=1"
    assert [d.event for d in deliveries] == ["subscribe", "VIEW", "unsubscribe"]
    assert outcomes == [DeliveryStatus.SUCCEEDED] * 3
    assert bodies == [d.payload.encode() for d in deliveries]
    subscribe, view, unsubscribe = (body.decode() for body in bodies)
    # and: strings in CDATA, CreateTime a bare integer, no MsgId on events, canonical
    # case, and an empty EventKey on a plain subscribe
    head = (
        f"<xml><ToUserName><![CDATA[{account.original_id}]]></ToUserName>"
        f"<FromUserName><![CDATA[{follower.openid}]]></FromUserName><CreateTime>"
    )
    for body in (subscribe, view, unsubscribe):
        assert body.startswith(head)
        assert re.search(
            r"<CreateTime>\d+</CreateTime><MsgType><!\[CDATA\[event\]\]></MsgType>", body
        )
        assert "MsgId" not in body
    assert subscribe.endswith(
        "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[]]></EventKey></xml>"
    )
    assert "<Event><![CDATA[VIEW]]></Event><EventKey><![CDATA[https://example.com/p?a=1]]>" in view
    assert "<MenuId>" in view
    assert unsubscribe.endswith(
        "<Event><![CDATA[unsubscribe]]></Event><EventKey><![CDATA[]]></EventKey></xml>"
    )
    # and: both SDKs read them as the events they are
    assert [type(parse_message(b)) for b in bodies] == [
        events.SubscribeEvent,
        events.ViewEvent,
        events.UnsubscribeEvent,
    ]
    assert parse_message(bodies[1]).url == "https://example.com/p?a=1"
    assert [werobot.parser.parse_user_msg(b.decode()).type for b in bodies] == [
        "subscribe_event",
        "view_event",
        "unsubscribe_event",
    ]
    # and: the unfollowed user's chat got no notice or reply for the unsubscribe
    assert chat_texts(follower) == [f"welcome {follower.openid}"]


def test_retries__server_answers_garbage__three_identical_plaintexts_then_the_notice() -> None:
    # given: a safe-mode account whose server answers HTML
    account, _ = make_official_account()
    key = protocol.new_encoding_aes_key()
    with raw_server(token=TOKEN, post=lambda: ("200 OK", b"<html>oops</html>")) as server:
        configure_server(account, url=server.url, token=TOKEN, aes_key=key, mode="safe")
        carol = make_user()
        follower = make_follower(carol, account)
        run_delivery(WebhookDelivery.objects.get(event="subscribe").pk)
        # when
        delivery = run_delivery(send_text(carol, follower, "anyone there?").pk)
    # then: three attempts, each a fresh signature and ciphertext of the same plaintext
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempt_count == 3
    assert [a.outcome for a in delivery.attempts.all()] == [AttemptOutcome.BAD_REPLY] * 3
    posts = server.posts()[-3:]
    crypto = WeChatCrypto(TOKEN, key, account.appid)
    plaintexts = {
        crypto.decrypt_message(
            p.body, p.query["msg_signature"], p.query["timestamp"], p.query["nonce"]
        )
        for p in posts
    }
    assert plaintexts == {delivery.payload}
    assert len({p.body for p in posts}) == 3
    # and: the user is told, once, as WeChat tells them
    notices = Message.objects.filter(
        conversation_id=follower.conversation_id, kind=MessageKind.SYSTEM
    )
    assert [n.body["text"] for n in notices] == [
        replies.UNAVAILABLE_NOTICE
    ] * 2  # subscribe, message
    assert "not XML" in delivery.failure_reason or "root element" in delivery.failure_reason


@pytest.mark.parametrize(
    ("post", "sleep", "outcome"),
    [
        (lambda: ("500 Internal Server Error", b"boom"), 0, AttemptOutcome.HTTP_ERROR),
        (lambda: ("200 OK", b"<xml><MsgType>text</MsgType>"), 0, AttemptOutcome.BAD_REPLY),
        (lambda: ("200 OK", b'{"errcode":0}'), 0, AttemptOutcome.BAD_REPLY),
        (lambda: ("200 OK", b"x" * 70_000), 0, AttemptOutcome.TOO_LARGE),
        (lambda: ("200 OK", b"success"), 1.0, AttemptOutcome.TIMEOUT),
    ],
    ids=["http-500", "malformed-xml", "json", "oversized", "hangs"],
)
def test_misbehaving_server__each_attempt_fails_with_the_reason_logged(
    post: Any, sleep: float, outcome: AttemptOutcome, settings: Any
) -> None:
    settings.PUBLICPLATFORM_WEBHOOK_TIMEOUT_SECONDS = 0.4
    account, _ = make_official_account()
    with raw_server(token=TOKEN, post=post, sleep=sleep) as server:
        settings.PUBLICPLATFORM_WEBHOOK_TIMEOUT_SECONDS = 5
        configure_server(account, url=server.url, token=TOKEN)
        settings.PUBLICPLATFORM_WEBHOOK_TIMEOUT_SECONDS = 0.4
        dave = make_user()
        follower = make_follower(dave, account)
        delivery = run_delivery(WebhookDelivery.objects.get(event="subscribe").pk)
    assert delivery.status == DeliveryStatus.FAILED
    assert [a.outcome for a in delivery.attempts.all()] == [outcome] * 3
    assert all(a.detail for a in delivery.attempts.all())
    assert chat_texts(follower) == [replies.UNAVAILABLE_NOTICE]


def test_reply__encrypted_with_a_wrong_msgsignature__fails_each_attempt_and_the_user_is_told() -> (
    None
):
    # given: a safe-mode account whose server signs its encrypted replies with another Token
    account, _ = make_official_account()
    key = protocol.new_encoding_aes_key()
    reply = "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content></xml>"
    forged = WeChatCrypto("anothertoken1", key, account.appid).encrypt_message(
        reply, "12345", "1700000000"
    )
    with raw_server(token=TOKEN, post=lambda: ("200 OK", forged.encode())) as server:
        configure_server(account, url=server.url, token=TOKEN, aes_key=key, mode="safe")
        kim = make_user()
        # when: she follows (the subscribe push is answered with the forged reply)
        follower = make_follower(kim, account)
        delivery = run_delivery(WebhookDelivery.objects.get(event="subscribe").pk)
    # then: no attempt trusted it, the log says why, and she saw the notice only
    attempts = list(delivery.attempts.all())
    assert [a.outcome for a in attempts] == [AttemptOutcome.BAD_REPLY] * 3
    assert all("MsgSignature" in a.detail for a in attempts)
    assert chat_texts(follower) == [replies.UNAVAILABLE_NOTICE]


def test_no_reply__success_or_empty__is_not_retried_and_shows_nothing(settings: Any) -> None:
    account, _ = make_official_account()
    with raw_server(token=TOKEN, post=lambda: ("200 OK", b"success")) as server:
        configure_server(account, url=server.url, token=TOKEN)
        erin = make_user()
        follower = make_follower(erin, account)
        delivery = run_delivery(send_text(erin, follower, "ping").pk)
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert delivery.attempt_count == 1
    assert chat_texts(follower) == ["ping"]


def test_werobot_safe_mode__encrypted_success__means_no_reply() -> None:
    account, _ = make_official_account()
    key = protocol.new_encoding_aes_key()
    with werobot_server(TOKEN, app_id=account.appid, aes_key=key) as server:
        configure_server(account, url=server.url, token=TOKEN, aes_key=key, mode="safe")
        frank = make_user()
        follower = make_follower(frank, account)
        delivery = run_delivery(send_text(frank, follower, "quiet").pk)
        # then: WeRoBot encrypted its `success`; we decrypted it first
        assert b"<Encrypt>" in server.received[-1].body
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert [a.outcome for a in delivery.attempts.all()] == [AttemptOutcome.NO_REPLY]


def test_news_reply__werobot__becomes_article_cards() -> None:
    account, _ = make_official_account()
    with werobot_server(TOKEN) as server:
        configure_server(account, url=server.url, token=TOKEN)
        grace = make_user()
        follower = make_follower(grace, account)
        delivery = run_delivery(send_text(grace, follower, "news").pk)
    assert delivery.reply_message_id is not None
    reply = Message.objects.get(pk=delivery.reply_message_id)
    assert reply.body["official"]["articles"][0]["title"] == "Title"


def test_webhook_test_tool__shows_the_signed_string_expected_signature_and_response() -> None:
    account, _ = make_official_account()
    with wechatpy_server(TOKEN) as server:
        configure_server(account, url=server.url, token=TOKEN)
        outcome = webhooks.webhook_test(account=account, text="testing")
    query = server.posts()[-1].query
    assert outcome.signed_string == "".join(sorted([TOKEN, query["timestamp"], query["nonce"]]))
    assert (
        outcome.signature
        == query["signature"]
        == protocol.sign(TOKEN, query["timestamp"], query["nonce"])
    )
    assert outcome.result.ok
    assert "echo: testing" in outcome.result.excerpt


def test_requeue_stale__pending_push_whose_task_was_lost__is_enqueued_again() -> None:
    # given: a push created five minutes ago whose task never ran (a lost broker
    # message: in this rolled-back test no task ever runs), and a fresh one
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    account, _ = make_official_account()
    with raw_server(token=TOKEN, post=lambda: ("200 OK", b"success")) as server:
        configure_server(account, url=server.url, token=TOKEN)
        with time_machine.travel(timezone.now() - timedelta(minutes=5)):
            make_follower(make_user(), account)
        fresh = make_follower(make_user(), account)
        # when: the periodic sweep runs
        requeued = webhooks.deliveries_requeue_stale(idle_seconds=60)
        # then: only the old one goes out again, and it can still be delivered
        old = WebhookDelivery.objects.exclude(follower=fresh).get()
        assert requeued == [old.pk]
        assert run_delivery(old.pk).status == DeliveryStatus.SUCCEEDED
    assert webhooks.deliveries_requeue_stale(idle_seconds=60) == []


def test_pushes__are_counted_by_monitoring_as_outbound_calls() -> None:
    # given: a follower of an account whose server answers
    from publicplatform.transport import METRICS_SERVICE
    from wechat_core.metrics import sample_value

    account, _ = make_official_account()
    with werobot_server(TOKEN) as server:
        configure_server(account, url=server.url, token=TOKEN)
        before = sample_value("outbound_requests_total", service=METRICS_SERVICE, outcome="2xx")
        alice = make_user()
        # when: following pushes the subscribe event
        follower = make_follower(alice, account)
        run_delivery(WebhookDelivery.objects.get(account=account, event="subscribe").pk)
        run_delivery(send_text(alice, follower, "counted?").pk)
    # then: both pushes are in the outbound-call metric, without publicplatform code for it
    after = sample_value("outbound_requests_total", service=METRICS_SERVICE, outcome="2xx")
    assert after - before == 2


def test_server_url_with_its_own_query__kept_on_the_handshake_and_every_push() -> None:
    # given: a developer whose server URL carries parameters of its own (issue 11 item 19)
    account, _ = make_official_account()
    alice = make_user()
    with wechatpy_server(TOKEN) as server:
        url = f"{server.url}?access_token=dev-X&site=cn"
        # when: the server is verified, Alice follows and writes
        configure_server(account, url=url, token=TOKEN)
        follower = make_follower(alice, account)
        run_delivery(WebhookDelivery.objects.get(account=account, event="subscribe").pk)
        delivery = run_delivery(send_text(alice, follower, "hi").pk)
    # then: every request kept the developer's parameters, with WeChat's appended and
    # signed, and the server's reply came back (its signature check passed)
    assert [r.method for r in server.received] == ["GET", "POST", "POST"]
    for request in server.received:
        assert request.query["access_token"] == "dev-X"
        assert request.query["site"] == "cn"
        assert request.query["signature"] == protocol.sign(
            TOKEN, request.query["timestamp"], request.query["nonce"]
        )
    assert "echostr" in server.received[0].query
    assert server.received[2].query["openid"] == follower.openid
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert chat_texts(follower)[-1] == "echo: hi"
    assert delivery.attempts.get().url.startswith(f"{server.url}?access_token=dev-X&site=cn&")
