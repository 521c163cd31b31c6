"""The platform end to end with real processes: a daphne and the Procfile's Celery
workers of their own (tests/conftest.py `platform_stack`), users on real
websockets, real developer servers on loopback, and the SDKs' own API clients
pointed at us."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
import werobot.client
from wechatpy import WeChatClient
from wechatpy.constants import WeChatErrorCode
from wechatpy.exceptions import WeChatClientException

from accounts.models import User
from devtools.devservers import serve, wechatpy_app, wechatpy_server, werobot_server
from devtools.processes import ServerProcess
from messaging.client import ChatClient
from publicplatform.models import AccessToken, Follower, MatchKind, WebhookDelivery
from publicplatform.services.accounts import autoreply_add
from publicplatform.services.replies import UNAVAILABLE_NOTICE
from tests.factories import (
    configure_server,
    login_session,
    make_follower,
    make_official_account,
    make_user,
)
from tests.support.chat import run, ws_url
from tests.support.platform import PlatformStack, platform_stack_running

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]
TOKEN = "testtoken123"


def entry_text(entry: dict[str, Any]) -> str:
    message = entry.get("message") or {}
    return str((message.get("body") or {}).get("text", ""))


async def follow_over_http(daphne: ServerProcess, token: str, account_id: int) -> int:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{daphne.url}/api/official/accounts/{account_id}/follow",
            headers={"Authorization": f"Ticket {token}"},
        )
    assert response.status_code == 200, response.text
    return int(response.json()["conversation_id"])


def test_live__follow_and_chat_with_a_werobot_account__the_replies_arrive_through_sync(
    platform_stack: tuple[ServerProcess, ServerProcess],
) -> None:
    # given: a WeRoBot server behind an account, and Alice online
    daphne, _ = platform_stack
    account, _ = make_official_account(name="Echo bot")
    alice = login_session(make_user(nickname="Alice"))
    with werobot_server(TOKEN) as server:
        configure_server(account, url=server.url, token=TOKEN)

        async def scenario() -> tuple[str, str]:
            async with ChatClient([ws_url(daphne)], alice.token) as client:
                # when: she follows it (subscribe) and writes to it
                conversation = await follow_over_http(daphne, alice.token, account.pk)
                welcome = await client.wait_for(lambda e: entry_text(e).startswith("welcome"), 30)
                await client.send(conversation, {"kind": "text", "text": "hi"})
                echo = await client.wait_for(lambda e: entry_text(e) == "echo: hi", 30)
                return entry_text(welcome), echo["message"]["sender"]

        welcome, sender = run(scenario())
    # then: the server's replies reached her, from the account's identity
    openid = Follower.objects.get(account=account, user=alice.user).openid
    assert welcome == f"welcome {openid}"
    assert sender == account.service_user_id
    assert [r.method for r in server.received] == ["GET", "POST", "POST"]


def test_live__slow_server__identical_retries_then_the_notice_while_other_accounts_keep_answering(
    platform_stack: tuple[ServerProcess, ServerProcess],
) -> None:
    # given: one account whose server takes longer than the timeout, one that is fast
    daphne, _ = platform_stack
    slow, _ = make_official_account(name="Slow")
    fast, _ = make_official_account(name="Fast")
    bob = login_session(make_user(nickname="Bob"))
    carol = login_session(make_user(nickname="Carol"))
    with wechatpy_server(TOKEN, delay=2.5) as slow_server, werobot_server(TOKEN) as fast_server:
        configure_server(slow, url=slow_server.url, token=TOKEN)
        configure_server(fast, url=fast_server.url, token=TOKEN)

        async def scenario() -> list[str]:
            order: list[str] = []
            async with (
                ChatClient([ws_url(daphne)], bob.token) as b,
                ChatClient([ws_url(daphne)], carol.token) as c,
            ):
                slow_chat = await follow_over_http(daphne, bob.token, slow.pk)
                fast_chat = await follow_over_http(daphne, carol.token, fast.pk)
                await c.wait_for(lambda e: entry_text(e).startswith("welcome"), 30)
                # when: Bob writes twice to the slow account, then Carol to the fast one
                await b.send(slow_chat, {"kind": "text", "text": "are you there?"})
                await b.send(slow_chat, {"kind": "text", "text": "hello?"})
                await c.send(fast_chat, {"kind": "text", "text": "quick"})
                await c.wait_for(lambda e: entry_text(e) == "echo: quick", 30)
                order.append("fast reply")
                for _ in range(3):  # the subscribe's notice and one per message
                    await b.wait_for(lambda e: entry_text(e) == UNAVAILABLE_NOTICE, 60)
                    order.append("notice")
                return order

        order = run(scenario(), timeout=180)
        posts = slow_server.wait_for_posts(9)
    # then: Carol's answer did not wait for Bob's slow server
    assert order == ["fast reply", "notice", "notice", "notice"]
    # and: each push was tried 3 times with byte-identical bodies and fresh signatures
    by_body: dict[bytes, list[str]] = {}
    for post in posts:
        by_body.setdefault(post.body, []).append(post.query["nonce"])
    assert sorted(len(nonces) for nonces in by_body.values()) == [3, 3, 3]
    assert all(len(set(nonces)) == 3 for nonces in by_body.values())
    # and: the log says why
    deliveries = WebhookDelivery.objects.filter(account=slow)
    assert {d.status for d in deliveries} == {"failed"}
    assert all(d.failure_reason.startswith("timeout") for d in deliveries)


@pytest.fixture(scope="module")
def production_stack(live_env: dict[str, str], live_log_dir: Path) -> Iterator[PlatformStack]:
    """The stack with the production defaults (4 pushes in flight per account, the
    Procfile's worker processes and threads), only a longer webhook timeout: a push
    the slow server holds then holds its thread for as long as the test looks."""
    env = {k: v for k, v in live_env.items() if k not in PROCFILE_VARIABLES}
    env["PUBLICPLATFORM_WEBHOOK_TIMEOUT_SECONDS"] = "30"
    with platform_stack_running(env=env, log_dir=live_log_dir, name="production") as stack:
        yield stack


PROCFILE_VARIABLES = ("CELERY_CONCURRENCY", "CELERY_WEBHOOK_THREADS")


async def until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(0.05)


def test_live__slow_account_flooded_with_pushes__another_accounts_replies_are_not_held_up(
    production_stack: PlatformStack,
) -> None:
    # given: the Procfile's workers with production settings, an account whose
    # server holds every push until the test lets it go (far past the 5 s the
    # issue's server slept), and an account whose server answers at once
    daphne = production_stack.daphne
    gate = threading.Event()
    echo = wechatpy_app(TOKEN)

    def held(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "POST":
            gate.wait(60)
        return echo(environ, start_response)

    slow, _ = make_official_account(name="Slow shop")
    fast, _ = make_official_account(name="Fast shop")
    bob = login_session(make_user(nickname="Bob"))
    carol = login_session(make_user(nickname="Carol"))
    with serve(held) as slow_server, werobot_server(TOKEN) as fast_server:
        try:
            configure_server(slow, url=slow_server.url, token=TOKEN)
            configure_server(fast, url=fast_server.url, token=TOKEN)

            async def scenario() -> list[str]:
                async with (
                    ChatClient([ws_url(daphne)], bob.token) as b,
                    ChatClient([ws_url(daphne)], carol.token) as c,
                ):
                    slow_chat = await follow_over_http(daphne, bob.token, slow.pk)
                    fast_chat = await follow_over_http(daphne, carol.token, fast.pk)
                    await c.wait_for(lambda e: entry_text(e).startswith("welcome"), 30)
                    # when: Bob floods the slow account (issue 11 item 17: four were enough)
                    for n in range(16):
                        await b.send(slow_chat, {"kind": "text", "text": f"flood {n}"})
                    await until(lambda: len(slow_server.posts()) >= 1)
                    # then: each of Carol's messages to the fast account is answered
                    # well within the 9-10 s the issue measured (the slow server
                    # holds its pushes for 30 s; a worker waiting on one would
                    # hold her reply at least that long)
                    replies = []
                    for n in range(3):
                        await c.send(fast_chat, {"kind": "text", "text": f"quick {n}"})
                        reply = await c.wait_for(lambda e: entry_text(e).startswith("echo"), 8)
                        replies.append(entry_text(reply))
                    # and: the slow account had its 4 pushes in flight, the rest waited
                    await until(lambda: len(slow_server.posts()) >= 4)
                    return replies

            replies = run(scenario(), timeout=120)
            held_at_once = len(slow_server.posts())
        finally:
            gate.set()
    assert replies == ["echo: quick 0", "echo: quick 1", "echo: quick 2"]
    assert held_at_once == 4


def test_live__catastrophic_keyword_regex__the_attack_is_answered_at_once_by_the_next_rule(
    platform_stack: tuple[ServerProcess, ServerProcess],
) -> None:
    # given: issue 11's attack: an account without a server whose first keyword rule
    # backtracks exponentially in Python's re, and a rule that answers the text
    daphne, _ = platform_stack
    account, _ = make_official_account(name="Regex shop")
    autoreply_add(account=account, match=MatchKind.REGEX, pattern="^(a+)+$", reply="all a")
    autoreply_add(account=account, match=MatchKind.CONTAINS, pattern="!", reply="bang")
    erin = login_session(make_user(nickname="Erin"))

    async def scenario() -> list[str]:
        answers = []
        async with ChatClient([ws_url(daphne)], erin.token) as client:
            chat = await follow_over_http(daphne, erin.token, account.pk)
            # when: she sends the attack text (17.6 s in the issue), then a longer one
            # (32 a's: minutes), through the real path: websocket, the Procfile's worker
            for attack in ("a" * 27 + "!", "a" * 32 + "!"):
                await client.send(chat, {"kind": "text", "text": attack})
                # then: each is answered by the second rule in far less time
                reply = await client.wait_for(lambda e: entry_text(e) in ("bang", "all a"), 10)
                answers.append(entry_text(reply))
        return answers

    assert run(scenario(), timeout=60) == ["bang", "bang"]


class LocalWeChatClient(WeChatClient):  # type: ignore[misc]
    """wechatpy's client with its base URL on our server (reference §5's recipe)."""

    API_BASE_URL = ""

    def fetch_access_token(self) -> Any:
        return self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


def wechatpy_client(
    daphne: ServerProcess, appid: str, secret: str, **options: Any
) -> LocalWeChatClient:
    client = LocalWeChatClient(appid, secret, **options)
    client.API_BASE_URL = f"{daphne.url}/cgi-bin/"
    return client


def test_live__wechatpy_client__mass_send_to_1000_followers_users_menus_and_token_refresh(
    platform_stack: tuple[ServerProcess, ServerProcess],
) -> None:
    # given: an account with 1,000 followers and a WeRoBot server
    daphne, _worker = platform_stack
    account, secret = make_official_account(name="Newsroom")
    people = [make_user(nickname=f"Reader {n}") for n in range(1000)]
    for person in people:
        make_follower(person, account)
    with werobot_server(TOKEN) as server:
        configure_server(account, url=server.url, token=TOKEN)
        client = wechatpy_client(daphne, account.appid, secret)
        # when: the developer lists followers, reads one, sets a menu, sends to all
        openids = list(client.user.iter_followers())
        info = client.user.get(openids[0])
        client.menu.create({"button": [{"type": "click", "name": "Today", "key": "TODAY"}]})
        menu = client.menu.get()
        sent = client.message.send_mass_text(None, "Morning edition", is_to_all=True)
        finished = wait_for_event(server, "MASSSENDJOBFINISH")
        sent_to = User.objects.filter(pk__in=[p.pk for p in people])
    # then
    assert len(openids) == 1000
    assert len(set(openids)) == 1000
    assert info["subscribe"] == 1
    assert info["openid"] == openids[0]
    assert menu["menu"]["button"][0]["key"] == "TODAY"
    assert finished["MsgID"] == str(sent["msg_id"])
    assert finished["SentCount"] == "1000"
    assert finished["ErrorCount"] == "0"
    assert sent_to.count() == 1000
    from messaging.models import Message

    assert (
        Message.objects.filter(
            sender_id=account.service_user_id, body__text="Morning edition"
        ).count()
        == 1000
    )

    # when: a token outlives its 4 s (PLATFORM_ENV) and a client still holds it
    stale = client.access_token
    issued = AccessToken.objects.filter(account=account).count()
    time.sleep(4.5)
    holder = wechatpy_client(daphne, account.appid, secret, access_token=stale)
    answer = holder.menu.get()
    # then: the server said 42001, wechatpy fetched a new token and the call went through
    assert answer["menu"]["button"][0]["key"] == "TODAY"
    assert AccessToken.objects.filter(account=account).count() == issued + 1


def test_live__wechatpy_client__missing_credentials_wrong_method_and_unknown_token__wechats_codes(
    platform_stack: tuple[ServerProcess, ServerProcess],
) -> None:
    # given: an account, and wechatpy's client pointed at our server
    daphne, _ = platform_stack
    account, secret = make_official_account(name="Codes")

    def failure(call: Any) -> int:
        with pytest.raises(WeChatClientException) as raised:
            call()
        return int(raised.value.errcode)

    # when / then: no appid, no secret (wechatpy's own names for WeChat's codes)
    no_appid = wechatpy_client(daphne, "", secret)
    assert failure(no_appid.fetch_access_token) == WeChatErrorCode.MISSING_APP_ID.value == 41002
    no_secret = wechatpy_client(daphne, account.appid, "")
    assert failure(no_secret.fetch_access_token) == WeChatErrorCode.MISSING_APP_SECRET.value
    # when / then: a GET endpoint posted to, a POST endpoint fetched
    client = wechatpy_client(daphne, account.appid, secret)
    assert failure(lambda: client.post("menu/get")) == WeChatErrorCode.REQUIRE_GET.value
    assert failure(lambda: client.get("message/custom/send")) == WeChatErrorCode.REQUIRE_POST.value
    # when / then: a token we never issued is 40001, which wechatpy answers by
    # fetching a new token and calling again
    forged = wechatpy_client(daphne, account.appid, secret, access_token="1.forged")
    forged.auto_retry = False
    assert failure(forged.menu.get) == WeChatErrorCode.INVALID_CREDENTIAL.value
    forged.auto_retry = True
    assert forged.menu.get() is None  # 46003, no menu: wechatpy's answer for it
    assert forged.access_token != "1.forged"


def wait_for_event(server: Any, event: str, timeout: float = 120) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for post in server.posts():
            root = ElementTree.fromstring(post.body)  # noqa: S314 - our own push
            if root.findtext("Event") == event:
                return {child.tag: child.text or "" for child in root}
        time.sleep(0.2)
    raise AssertionError(f"no {event} event reached the developer server")


class LocalWeRoBotClient(werobot.client.Client):  # type: ignore[misc]
    base = ""

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        for prefix in ("https://api.weixin.qq.com/", "http://api.weixin.qq.com/"):
            if url.startswith(prefix):
                url = self.base + url[len(prefix) :]
        return super().request(method, url, **kwargs)


def test_live__werobot_client__custom_message_followers_and_menu(
    platform_stack: tuple[ServerProcess, ServerProcess],
) -> None:
    daphne, _ = platform_stack
    account, secret = make_official_account(name="Support desk")
    dave = login_session(make_user(nickname="Dave"))
    follower = make_follower(dave.user, account)
    client = LocalWeRoBotClient(werobot.config.Config(APP_ID=account.appid, APP_SECRET=secret))
    client.base = f"{daphne.url}/"

    async def scenario() -> dict[str, Any]:
        async with ChatClient([ws_url(daphne)], dave.token) as chat:
            client.send_text_message(follower.openid, "Your ticket #42 is solved")
            return await chat.wait_for(lambda e: entry_text(e) == "Your ticket #42 is solved", 30)

    entry = run(scenario())
    assert entry["message"]["sender"] == account.service_user_id
    assert client.get_followers()["data"]["openid"] == [follower.openid]
    assert (
        client.create_menu(
            {"button": [{"type": "view", "name": "Help", "url": "https://example.com/"}]}
        )["errcode"]
        == 0
    )
