"""Calls to developers' servers reach only the public internet (unless private
server URLs are allowed, as in development and in these tests' other files): a
URL is refused when saved, and every connection checks the address it is about
to use, so a name that resolves elsewhere later (DNS rebinding) gets nowhere."""

from __future__ import annotations

from typing import Any

import pytest

from publicplatform.exceptions import ServerUrlRefused
from publicplatform.models import AttemptOutcome, DeliveryStatus, WebhookDelivery
from publicplatform.services import webhooks
from publicplatform.services.accounts import server_url_check
from tests.factories import configure_server, make_follower, make_official_account, make_user
from tests.support.devservers import raw_server

pytestmark = pytest.mark.django_db
TOKEN = "testtoken123"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/wechat",
        "http://localhost/wechat",
        "http://10.1.2.3/wechat",
        "https://192.168.0.7/wechat",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/wechat",
        "http://[::ffff:127.0.0.1]/wechat",
        "http://no-such-host.invalid/wechat",
    ],
)
def test_server_url_check__private_or_unresolvable_host__is_refused(
    url: str, settings: Any
) -> None:
    settings.PUBLICPLATFORM_ALLOW_PRIVATE_SERVER_URLS = False
    with pytest.raises(ServerUrlRefused):
        server_url_check(url)


def test_server_url_check__public_address__is_accepted(settings: Any) -> None:
    # An address literal: no DNS needed, nothing is connected to.
    settings.PUBLICPLATFORM_ALLOW_PRIVATE_SERVER_URLS = False
    assert server_url_check(" http://8.8.8.8/wechat ") == "http://8.8.8.8/wechat"


def test_push__host_resolving_to_loopback_when_pushed__is_refused_before_connecting(
    settings: Any,
) -> None:
    # given: a server URL that passed its check when saved (here: while private
    # addresses were allowed), and resolves to loopback when the push goes out
    account, _ = make_official_account()
    with raw_server(token=TOKEN, post=lambda: ("200 OK", b"success")) as server:
        configure_server(account, url=server.url.replace("127.0.0.1", "localhost"), token=TOKEN)
        settings.PUBLICPLATFORM_ALLOW_PRIVATE_SERVER_URLS = False
        make_follower(make_user(), account)
        delivery = WebhookDelivery.objects.get(account=account, event="subscribe")
        # when
        while webhooks.delivery_step(delivery_id=delivery.pk).retry_in is not None:
            pass
        posts = server.posts()
    # then: no request reached the server, and the log says why
    delivery.refresh_from_db()
    assert posts == []
    assert delivery.status == DeliveryStatus.FAILED
    attempts = list(delivery.attempts.all())
    assert [a.outcome for a in attempts] == [AttemptOutcome.CONNECT_ERROR] * 3
    assert all("not on the public internet" in a.detail for a in attempts)
