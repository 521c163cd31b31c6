"""The developer REST API at /cgi-bin/ in-process (wechatpy and WeRoBot clients call
it over HTTP in test_live.py): HTTP 200 with errcode/errmsg and a request id,
JSON whatever the content type, tokens, windows and quotas, users, menus, mass."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from messaging.models import Message
from publicplatform.models import MassJob, MassJobStatus, MessageTemplate
from publicplatform.services import followers, mass
from tests.factories import login_ticket, make_follower, make_official_account, make_user

pytestmark = pytest.mark.django_db
RID = re.compile(r" rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$")


class Api:
    def __init__(self, appid: str, secret: str) -> None:
        self.client = Client()
        self.appid, self.secret = appid, secret
        self.token = self.fetch_token()["access_token"]

    def fetch_token(self, **overrides: str) -> dict[str, Any]:
        params = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
        return self.get("token", **(params | overrides), access_token=None)

    def get(self, path: str, access_token: str | None = "", **params: Any) -> dict[str, Any]:
        if access_token is not None:
            params["access_token"] = access_token or self.token
        response = self.client.get(f"/cgi-bin/{path}", params)
        assert response.status_code == 200
        return dict(response.json())

    def post(
        self, path: str, body: Any, *, raw: bytes | None = None, token: str | None = None
    ) -> dict[str, Any]:
        data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
        # Both SDKs send JSON with no Content-Type at all.
        response = self.client.generic(
            "POST", f"/cgi-bin/{path}?access_token={token or self.token}", data, content_type=""
        )
        assert response.status_code == 200
        return dict(response.json())


@pytest.fixture
def api() -> Api:
    account, secret = make_official_account(name="Api Account")
    return Api(account.appid, secret)


def error(answer: dict[str, Any], code: int) -> str:
    assert answer["errcode"] == code, answer
    assert RID.search(answer["errmsg"]), answer["errmsg"]
    return str(answer["errmsg"])


def test_token__issued__has_expires_in_and_every_earlier_token_keeps_working(api: Api) -> None:
    first = api.token
    second = api.fetch_token()
    assert second["expires_in"] == 7200
    assert second["access_token"] != first
    assert api.get("menu/delete", access_token=first) == {"errcode": 0, "errmsg": "ok"}
    assert api.get("menu/delete", access_token=second["access_token"])["errcode"] == 0


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"grant_type": "password"}, 40002),
        ({"appid": "wx0000000000000000"}, 40013),
        ({"secret": "nope"}, 40125),
    ],
)
def test_token__bad_credentials__errcodes_of_the_reference(
    api: Api, overrides: dict[str, str], code: int
) -> None:
    error(api.fetch_token(**overrides), code)


def test_token__past_its_lifetime__42001_and_a_fresh_one_works(api: Api) -> None:
    with time_machine.travel(timezone.now() + timedelta(seconds=7201)):
        assert "expired" in error(api.get("menu/delete"), 42001)
        fresh = api.fetch_token()["access_token"]
        assert api.get("menu/delete", access_token=fresh)["errcode"] == 0


def test_token__missing_or_unknown__41001_and_40001(api: Api) -> None:
    response = api.client.get("/cgi-bin/menu/get")
    error(response.json(), 41001)
    error(api.get("menu/get", access_token="1.forged"), 40001)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"grant_type": "client_credential", "secret": "s"}, 41002),
        ({"grant_type": "client_credential", "appid": "", "secret": "s"}, 41002),
        ({"grant_type": "client_credential", "appid": "wx0000000000000000"}, 41004),
        ({"grant_type": "client_credential", "appid": "wx0000000000000000", "secret": ""}, 41004),
    ],
)
def test_token__appid_or_secret_missing__41002_and_41004_of_wechats_table(
    params: dict[str, str], code: int
) -> None:
    answer = Client().get("/cgi-bin/token", params).json()
    error(answer, code)


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("post", "token", 43001),
        ("post", "menu/get", 43001),
        ("post", "user/get", 43001),
        ("get", "message/custom/send", 43002),
        ("get", "menu/create", 43002),
        ("put", "menu/delete", 43002),
    ],
)
def test_wrong_http_method__43001_require_get_or_43002_require_post(
    api: Api, method: str, path: str, code: int
) -> None:
    response = getattr(api.client, method)(f"/cgi-bin/{path}?access_token={api.token}")
    assert response.status_code == 200
    error(response.json(), code)


def test_token__too_many_requests_a_day__45009(api: Api, settings: Any) -> None:
    settings.PUBLICPLATFORM_TOKEN_REQUESTS_PER_DAY = 3
    answers = [api.fetch_token() for _ in range(3)]
    assert [a.get("errcode", 0) for a in answers] == [0, 0, 45009]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", 44002),
        (b"{not json", 47001),
        (b"[1, 2]", 47001),
        (b'{"touser": "' + b"x" * 1_100_000 + b'"}', 45002),
    ],
)
def test_bad_bodies__answered_with_errcodes_never_http_errors(
    api: Api, raw: bytes, code: int
) -> None:
    error(api.post("message/custom/send", None, raw=raw), code)


def test_unknown_endpoint__48001_naming_it(api: Api) -> None:
    assert "/cgi-bin/datacube/getusersummary" in error(api.get("datacube/getusersummary"), 48001)


def account_of(api: Api) -> Any:
    from publicplatform.models import OfficialAccount

    return OfficialAccount.objects.get(appid=api.appid)


def test_custom_send__within_48h__reaches_the_chat_and_counts_toward_the_limit(
    api: Api, settings: Any
) -> None:
    settings.PUBLICPLATFORM_CUSTOM_MESSAGES_PER_INTERACTION = 2
    alice = make_user()
    follower = make_follower(alice, account_of(api))
    body = {"touser": follower.openid, "msgtype": "text", "text": {"content": "你好 Alice"}}
    assert api.post("message/custom/send", body) == {"errcode": 0, "errmsg": "ok"}
    assert api.post("message/custom/send", body)["errcode"] == 0
    assert "window closes" in error(api.post("message/custom/send", body), 45047)
    texts = Message.objects.filter(conversation_id=follower.conversation_id).values_list(
        "body__text", flat=True
    )
    assert list(texts) == ["你好 Alice", "你好 Alice"]


def test_custom_send__news_with_a_script_link__reaches_the_chat_without_the_link(
    api: Api,
) -> None:
    # given
    follower = make_follower(make_user(), account_of(api))
    articles = [
        {"title": "Safe", "url": "https://example.com/", "picurl": "https://example.com/p.png"},
        {"title": "Trap", "url": "javascript:alert(1)", "picurl": "data:image/png;base64,AA"},
    ]
    body = {"touser": follower.openid, "msgtype": "news", "news": {"articles": articles}}
    # when
    assert api.post("message/custom/send", body)["errcode"] == 0
    # then
    sent = Message.objects.get(conversation_id=follower.conversation_id)
    cards = sent.body["official"]["articles"]
    assert [(c["title"], c["url"], c["picurl"]) for c in cards] == [
        ("Safe", "https://example.com/", "https://example.com/p.png"),
        ("Trap", "", ""),
    ]


def test_custom_send__after_48h_or_unfollowed__45015(api: Api) -> None:
    bob = make_user()
    follower = make_follower(bob, account_of(api))
    body = {"touser": follower.openid, "msgtype": "text", "text": {"content": "late"}}
    with time_machine.travel(timezone.now() + timedelta(hours=48, seconds=1)):
        token = api.fetch_token()["access_token"]
        assert "window closed" in error(api.post("message/custom/send", body, token=token), 45015)
    followers.account_unfollow(
        ticket=login_ticket(bob), user_id=bob.pk, account_id=follower.account_id
    )
    assert "unfollowed" in error(api.post("message/custom/send", body), 45015)


def test_custom_send__unknown_openid_or_type__40003_and_40008(api: Api) -> None:
    error(
        api.post(
            "message/custom/send",
            {"touser": "o" + "x" * 27, "msgtype": "text", "text": {"content": "x"}},
        ),
        40003,
    )
    error(api.post("message/custom/send", {"touser": "o" + "x" * 27, "msgtype": "dance"}), 40008)


def test_template_send__known_template__renders_into_the_chat(api: Api) -> None:
    account = account_of(api)
    MessageTemplate.objects.create(
        account=account,
        template_id="T1",
        title="Order shipped",
        content="Order {{order.DATA}} is on its way",
    )
    carol = make_user()
    follower = make_follower(carol, account)
    answer = api.post(
        "message/template/send",
        {
            "touser": follower.openid,
            "template_id": "T1",
            "data": {"order": {"value": "A-17", "color": "#173177"}},
        },
    )
    assert answer["errcode"] == 0
    assert (
        Message.objects.get(pk=answer["msgid"])
        .body["text"]
        .startswith("Order shipped\nOrder A-17 is on its way")
    )
    error(
        api.post("message/template/send", {"touser": follower.openid, "template_id": "nope"}), 40037
    )


def test_template_send__account_with_a_server__templatesendjobfinish_follows(api: Api) -> None:
    # given: an account with a server, a template and a follower
    from devtools.devservers import raw_server
    from publicplatform.models import WebhookDelivery
    from publicplatform.services import webhooks
    from tests.factories import configure_server

    account = account_of(api)
    MessageTemplate.objects.create(account=account, template_id="T2", title="Hi", content="x")
    with raw_server(token="testtoken123", post=lambda: ("200 OK", b"success")) as server:
        configure_server(account, url=server.url)
        follower = make_follower(make_user(), account)
        # when
        answer = api.post("message/template/send", {"touser": follower.openid, "template_id": "T2"})
        event = WebhookDelivery.objects.get(account=account, event="TEMPLATESENDJOBFINISH")
        while webhooks.delivery_step(delivery_id=event.pk).retry_in is not None:
            pass
        body = server.posts()[-1].body.decode()
    # then: the event names the message, from the follower, in the reference's spelling
    assert answer["errcode"] == 0
    assert f"<MsgID>{answer['msgid']}</MsgID>" in body
    assert "<Status><![CDATA[success]]></Status>" in body
    assert f"<FromUserName><![CDATA[{follower.openid}]]></FromUserName>" in body
    assert "MsgId" not in body


def test_user_info__follower_and_unfollower__shapes_of_the_reference(api: Api) -> None:
    account = account_of(api)
    dave = make_user()
    follower = make_follower(dave, account)
    info = api.get("user/info", openid=follower.openid, lang="en")
    assert info["subscribe"] == 1
    assert info["openid"] == follower.openid
    assert "unionid" not in info
    assert {"subscribe_time", "tagid_list", "language", "remark"} <= set(info)
    followers.account_unfollow(ticket=login_ticket(dave), user_id=dave.pk, account_id=account.pk)
    assert api.get("user/info", openid=follower.openid) == {
        "subscribe": 0,
        "openid": follower.openid,
    }
    account.open_platform_id = "open-1"
    account.save()
    assert len(api.get("user/info", openid=follower.openid)["unionid"]) == 29
    batch = api.post(
        "user/info/batchget", {"user_list": [{"openid": follower.openid, "lang": "zh_CN"}]}
    )
    assert batch["user_info_list"][0]["openid"] == follower.openid


def test_user_info_batchget__many_openids__answers_in_order_from_one_query(
    api: Api, django_assert_max_num_queries: Any
) -> None:
    # given: five followers, one of whom unfollowed
    account = account_of(api)
    people = [make_user() for _ in range(5)]
    openids = [make_follower(person, account).openid for person in people]
    followers.account_unfollow(
        ticket=login_ticket(people[2]), user_id=people[2].pk, account_id=account.pk
    )
    body = {"user_list": [{"openid": o, "lang": "en"} for o in reversed(openids)]}
    # when: token check, follower rows
    with django_assert_max_num_queries(3):
        answer = api.post("user/info/batchget", body)
    # then
    infos = answer["user_info_list"]
    assert [i["openid"] for i in infos] == list(reversed(openids))
    assert [i["subscribe"] for i in infos] == [1, 1, 0, 1, 1]
    assert infos[2] == {"subscribe": 0, "openid": openids[2]}
    assert all(i["language"] == "en" for i in infos if i["subscribe"])
    # and: an openid nobody has refuses the batch
    body["user_list"].append({"openid": "o" + "z" * 27})
    error(api.post("user/info/batchget", body), 40003)
    error(api.post("user/info/batchget", {"user_list": []}), 40035)


def test_user_get__paging__next_openid_always_present_and_no_data_past_the_end(
    api: Api, settings: Any
) -> None:
    settings.PUBLICPLATFORM_USER_GET_PAGE = 2
    account = account_of(api)
    openids = sorted(make_follower(make_user(), account).openid for _ in range(3))
    first = api.get("user/get")
    second = api.get("user/get", next_openid=first["next_openid"])
    end = api.get("user/get", next_openid=second["next_openid"])
    assert first["data"]["openid"] + second["data"]["openid"] == openids
    assert (first["total"], first["count"], second["count"]) == (3, 2, 1)
    assert end == {"total": 3, "count": 0, "next_openid": ""}


def test_menu__create_get_delete__and_button_count_errors(api: Api) -> None:
    menu = {
        "button": [
            {"type": "click", "name": "Hi", "key": "V1001_GOOD"},
            {
                "name": "More",
                "sub_button": [{"type": "view", "name": "Site", "url": "http://example.com/"}],
            },
        ]
    }
    assert api.post("menu/create", menu)["errcode"] == 0
    assert api.get("menu/get") == {"menu": menu}
    error(api.post("menu/create", {"button": [menu["button"][0]] * 4}), 40016)
    error(
        api.post("menu/create", {"button": [{"name": "x", "sub_button": [menu["button"][0]] * 6}]}),
        40017,
    )
    assert api.get("menu/delete")["errcode"] == 0
    error(api.get("menu/get"), 46003)


def test_mass_sendall__legacy_group_id_filter__queues_a_job_that_reaches_every_follower(
    api: Api, settings: Any
) -> None:
    settings.PUBLICPLATFORM_MASS_SEND_BATCH = 2
    account = account_of(api)
    people = [make_follower(make_user(), account) for _ in range(5)]
    answer = api.post(
        "message/mass/sendall",
        {
            "filter": {"is_to_all": True, "group_id": None},
            "msgtype": "text",
            "text": {"content": "Big news"},
        },
    )
    assert answer["errmsg"] == "send job submission success"
    while mass.mass_batch_send(job_id=answer["msg_id"]):
        pass
    job = MassJob.objects.get(pk=answer["msg_id"])
    assert (job.status, job.total_count, job.sent_count, job.error_count) == (
        MassJobStatus.FINISHED,
        5,
        5,
        0,
    )
    for follower in people:
        assert (
            Message.objects.filter(
                conversation_id=follower.conversation_id, body__text="Big news"
            ).count()
            == 1
        )


def test_mass__tag_filter_and_repeated_clientmsgid__40050_and_45065(api: Api) -> None:
    text = {"msgtype": "text", "text": {"content": "x"}}
    error(
        api.post("message/mass/sendall", {"filter": {"is_to_all": False, "tag_id": 2}, **text}),
        40050,
    )
    body = {"filter": {"is_to_all": True}, "clientmsgid": "launch-1", **text}
    assert api.post("message/mass/sendall", body)["errcode"] == 0
    error(api.post("message/mass/sendall", body), 45065)
