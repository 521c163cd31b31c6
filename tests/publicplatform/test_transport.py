"""Calls to developers' servers reach only the public internet (unless private
server URLs are allowed, as in development and in these tests' other files): a
URL is refused when saved, and every connection checks the address it is about
to use, so a name that resolves elsewhere later (DNS rebinding) gets nowhere.
IPv6 spellings that carry a private IPv4 address (mapped, compatible,
translated, NAT64, 6to4) and deprecated site-local addresses are not public."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devtools.devservers import raw_server
from publicplatform.exceptions import ServerUrlRefused
from publicplatform.models import AttemptOutcome, DeliveryStatus, WebhookDelivery
from publicplatform.services import webhooks
from publicplatform.services.accounts import server_url_check
from publicplatform.transport import is_public_address
from tests.factories import configure_server, make_follower, make_official_account, make_user

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
        # IPv6 forms that carry a private IPv4 address, and site-local (issue 11 item 12)
        "http://[::127.0.0.1]/wechat",  # IPv4-compatible loopback
        "http://[::ffff:0:7f00:1]/wechat",  # IPv4-translated loopback
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # NAT64 of 169.254.169.254
        "http://[64:ff9b:1::a00:1]/wechat",  # local-use NAT64 of 10.0.0.1
        "http://[2002:a9fe:a9fe::1]/wechat",  # 6to4 of 169.254.169.254
        "http://[fec0::1]/wechat",  # site-local
    ],
)
def test_server_url_check__private_or_unresolvable_host__is_refused(
    url: str, settings: Any
) -> None:
    settings.PUBLICPLATFORM_PRIVATE_SERVER_NETWORKS = []
    with pytest.raises(ServerUrlRefused):
        server_url_check(url)


@pytest.mark.parametrize(
    "url",
    [
        " http://8.8.8.8/wechat ",
        "http://[2606:4700:4700::1111]/wechat",
        "http://[64:ff9b::808:808]/wechat",  # NAT64 of a public address
        "http://[2002:808:808::1]/wechat",  # 6to4 of a public address
    ],
)
def test_server_url_check__public_address__is_accepted(url: str, settings: Any) -> None:
    # An address literal: no DNS needed, nothing is connected to.
    settings.PUBLICPLATFORM_PRIVATE_SERVER_NETWORKS = []
    assert server_url_check(url) == url.strip()


def test_server_url_check__private_networks_listed__only_those_are_allowed(settings: Any) -> None:
    # given: the operator allows the loopback network for a local test server
    settings.PUBLICPLATFORM_PRIVATE_SERVER_NETWORKS = ["127.0.0.0/8"]
    # then: loopback passes, every other private address is still refused
    assert server_url_check("http://127.0.0.1:8888/wx") == "http://127.0.0.1:8888/wx"
    for url in ("http://169.254.169.254/", "http://10.0.0.1/", "http://[::1]/"):
        with pytest.raises(ServerUrlRefused):
            server_url_check(url)


NAT64 = ipaddress.ip_network("64:ff9b::/96")
PRIVATE_V4 = [
    ipaddress.IPv4Network(n)
    for n in ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
              "172.16.0.0/12", "192.168.0.0/16", "198.18.0.0/15", "240.0.0.0/4")
]  # fmt: skip


@st.composite
def private_v4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    network = draw(st.sampled_from(PRIVATE_V4))
    offset = draw(st.integers(min_value=0, max_value=network.num_addresses - 1))
    return network[offset]


def embeddings(v4: ipaddress.IPv4Address, low: int) -> list[str]:
    """Every IPv6 spelling that carries `v4` (`low` fills the 6to4 interface bits)."""
    n = int(v4)
    return [
        str(ipaddress.IPv6Address(n)),  # ::a.b.c.d, IPv4-compatible
        str(ipaddress.IPv6Address((0xFFFF << 32) | n)),  # ::ffff:a.b.c.d, mapped
        str(ipaddress.IPv6Address((0xFFFF << 48) | n)),  # ::ffff:0:a.b.c.d, translated
        str(ipaddress.IPv6Address((0x64FF9B << 96) | n)),  # 64:ff9b::a.b.c.d, NAT64
        str(ipaddress.IPv6Address((0x0064FF9B0001 << 80) | n)),  # 64:ff9b:1::, local NAT64
        str(ipaddress.IPv6Address((0x2002 << 112) | (n << 80) | low)),  # 2002:v4::/48, 6to4
    ]


@given(v4=private_v4(), low=st.integers(min_value=0, max_value=2**80 - 1))
def test_is_public_address__any_ipv6_form_of_a_private_ipv4__is_not_public(
    v4: ipaddress.IPv4Address, low: int
) -> None:
    assert not is_public_address(str(v4))
    for address in embeddings(v4, low):
        assert not is_public_address(address), address


@given(suffix=st.integers(min_value=0, max_value=2**118 - 1))
def test_is_public_address__site_local__is_not_public(suffix: int) -> None:
    assert not is_public_address(str(ipaddress.IPv6Address((0xFEC0 << 112) | suffix)))


@given(st.ip_addresses(v=6))
def test_is_public_address__ipv6_outside_global_unicast_and_nat64__is_not_public(
    address: ipaddress.IPv6Address,
) -> None:
    if address not in ipaddress.ip_network("2000::/3") and address not in NAT64:
        assert not is_public_address(str(address))


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_is_public_address__any_address__never_looser_than_the_standard_library(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    if is_public_address(str(address)):
        assert address.is_global
        assert not address.is_multicast


def test_push__host_resolving_to_loopback_when_pushed__is_refused_before_connecting(
    settings: Any,
) -> None:
    # given: a server URL that passed its check when saved (here: while private
    # addresses were allowed), and resolves to loopback when the push goes out
    account, _ = make_official_account()
    with raw_server(token=TOKEN, post=lambda: ("200 OK", b"success")) as server:
        configure_server(account, url=server.url.replace("127.0.0.1", "localhost"), token=TOKEN)
        settings.PUBLICPLATFORM_PRIVATE_SERVER_NETWORKS = []
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


def test_with_params__developer_query__kept_ours_appended_and_ours_win_a_clash() -> None:
    from publicplatform.transport import with_params

    url = with_params(
        "https://dev.example/wx?access_token=X&nonce=theirs",
        {"signature": "s", "timestamp": "1", "nonce": "2"},
    )
    assert url == "https://dev.example/wx?access_token=X&nonce=2&signature=s&timestamp=1"
