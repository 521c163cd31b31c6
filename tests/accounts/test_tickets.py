"""Tickets (DESIGN.md §5): checked in the data layer, hashed at rest, expiring, revocable."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

import accounts.services
import wallet.services
from accounts import selectors
from accounts.exceptions import TicketExpired, TicketInvalid, TicketRefused, TicketRevoked
from accounts.models import Friendship, Ticket, User
from accounts.services import contacts, devices, profile, wechat_ids
from accounts.tickets import ticket_require, ticket_verify
from accounts.types import VerifiedTicket
from tests.factories import fund_wallet, login_session, make_friends, make_user
from wallet import selectors as wallet_selectors
from wallet.models import LedgerAccount
from wallet.services import topups, wallets, withdrawals
from wallet.services.ledger import wallet_account_open

pytestmark = pytest.mark.django_db

# Every service and selector that takes a ticket, called the way a buggy view
# would: with Alice's ticket but Bob's user id. Each must refuse.
Call = Callable[[VerifiedTicket, User, User], Any]
WRONG_OWNER_CALLS: dict[str, Call] = {
    "devices.device_remove": lambda t, alice, bob: devices.device_remove(
        ticket=t, user_id=bob.pk, device_id=bob.devices.latest("pk").pk
    ),
    "devices.logout": lambda t, alice, bob: devices.logout(ticket=t, user_id=bob.pk),
    "devices.logout_everywhere": lambda t, alice, bob: devices.logout_everywhere(
        ticket=t, user_id=bob.pk
    ),
    "profile.profile_update": lambda t, alice, bob: profile.profile_update(
        ticket=t, user_id=bob.pk, nickname="pwned"
    ),
    "profile.avatar_set": lambda t, alice, bob: profile.avatar_set(
        ticket=t, user_id=bob.pk, upload=SimpleUploadedFile("a.png", b"x")
    ),
    "profile.avatar_clear": lambda t, alice, bob: profile.avatar_clear(ticket=t, user_id=bob.pk),
    "profile.password_change": lambda t, alice, bob: profile.password_change(
        ticket=t, user_id=bob.pk, old_password="x", new_password="a new passphrase 16"
    ),
    "wechat_ids.wechat_id_claim": lambda t, alice, bob: wechat_ids.wechat_id_claim(
        ticket=t, user_id=bob.pk, wechat_id="hijacked"
    ),
    "contacts.friend_request_send": lambda t, alice, bob: contacts.friend_request_send(
        ticket=t, user_id=bob.pk, to_user_id=alice.pk
    ),
    "contacts.friend_request_accept": lambda t, alice, bob: contacts.friend_request_accept(
        ticket=t, user_id=bob.pk, request_id=1
    ),
    "contacts.friend_request_decline": lambda t, alice, bob: contacts.friend_request_decline(
        ticket=t, user_id=bob.pk, request_id=1
    ),
    "contacts.friend_set_remark": lambda t, alice, bob: contacts.friend_set_remark(
        ticket=t, user_id=bob.pk, friend_id=alice.pk, remark="x"
    ),
    "contacts.friend_delete": lambda t, alice, bob: contacts.friend_delete(
        ticket=t, user_id=bob.pk, friend_id=alice.pk
    ),
    "contacts.user_block": lambda t, alice, bob: contacts.user_block(
        ticket=t, user_id=bob.pk, target_id=alice.pk
    ),
    "contacts.user_unblock": lambda t, alice, bob: contacts.user_unblock(
        ticket=t, user_id=bob.pk, target_id=alice.pk
    ),
    "selectors.user_get": lambda t, alice, bob: selectors.user_get(ticket=t, user_id=bob.pk),
    "selectors.device_list": lambda t, alice, bob: selectors.device_list(ticket=t, user_id=bob.pk),
    "selectors.contact_search": lambda t, alice, bob: selectors.contact_search(
        ticket=t, user_id=bob.pk, query="anyone"
    ),
    "selectors.friend_list": lambda t, alice, bob: selectors.friend_list(ticket=t, user_id=bob.pk),
    "selectors.friend_get": lambda t, alice, bob: selectors.friend_get(
        ticket=t, user_id=bob.pk, friend_id=alice.pk
    ),
    "selectors.friend_request_list": lambda t, alice, bob: selectors.friend_request_list(
        ticket=t, user_id=bob.pk, direction="incoming"
    ),
    "selectors.block_list": lambda t, alice, bob: selectors.block_list(ticket=t, user_id=bob.pk),
    "selectors.users_visible": lambda t, alice, bob: selectors.users_visible(
        ticket=t, user_id=bob.pk, other_ids=[alice.pk]
    ),
    "selectors.contact_relation": lambda t, alice, bob: selectors.contact_relation(
        ticket=t, user_id=bob.pk, other_id=alice.pk
    ),
    "selectors.device_profile_get": lambda t, alice, bob: selectors.device_profile_get(
        ticket=t, user_id=bob.pk
    ),
    # The wallet (money): reads and every movement a user starts.
    "wallet.selectors.wallet_summary": lambda t, alice, bob: wallet_selectors.wallet_summary(
        ticket=t, user_id=bob.pk
    ),
    "wallet.selectors.wallet_movements": lambda t, alice, bob: wallet_selectors.wallet_movements(
        ticket=t, user_id=bob.pk
    ),
    "wallet.selectors.topup_get": lambda t, alice, bob: wallet_selectors.topup_get(
        ticket=t, user_id=bob.pk, topup_id=1
    ),
    "wallet.selectors.withdrawal_get": lambda t, alice, bob: wallet_selectors.withdrawal_get(
        ticket=t, user_id=bob.pk, withdrawal_id=1
    ),
    "wallet.services.topups.topup_create": lambda t, alice, bob: topups.topup_create(
        ticket=t, user_id=bob.pk, client_id="x", amount=100, client_ip=None
    ),
    "wallet.services.withdrawals.withdrawal_create": lambda t, alice, bob: (
        withdrawals.withdrawal_create(ticket=t, user_id=bob.pk, client_id="x", amount=100)
    ),
    "wallet.services.wallets.wallet_spend": lambda t, alice, bob: wallets.wallet_spend(
        ticket=t,
        user_id=bob.pk,
        to_account_id=wallet_account_open(user_id=alice.pk).pk,
        amount=1,
        idempotency_key="stolen",
        kind="packet_send",
        reason="r",
    ),
}


# Functions that take a ticket but act only on that ticket's own device.
OWN_DEVICE_ONLY = {"devices.device_touch"}


def _ticketed_functions() -> set[str]:
    found = set()
    modules = [selectors, wallet_selectors] + [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for package in (accounts.services, wallet.services)
        for info in pkgutil.iter_modules(package.__path__)
    ]
    for module in modules:
        short = module.__name__.removeprefix("accounts.").removeprefix("services.")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if (
                function.__module__ == module.__name__
                and "ticket" in inspect.signature(function).parameters
            ):
                found.add(f"{short}.{name}")
    return found


def test_every_ticketed_service_and_selector__is_covered_by_the_wrong_owner_cases() -> None:
    # when
    ticketed = _ticketed_functions()
    # then: a new data-layer function cannot skip the refusal test
    assert ticketed == set(WRONG_OWNER_CALLS) | OWN_DEVICE_ONLY


@pytest.mark.parametrize("name", sorted(WRONG_OWNER_CALLS))
def test_data_layer__called_with_another_users_id__refuses(name: str) -> None:
    # given: Alice and Bob are friends; Bob has a device and a pending request
    alice, bob = make_user(nickname="Alice"), make_user(nickname="Bob")
    make_friends(alice, bob)
    login_session(bob)
    fund_wallet(bob, 500)
    alice_ticket = login_session(alice).ticket
    bob_before = User.objects.values().get(pk=bob.pk)
    # when / then
    with pytest.raises(TicketRefused):
        WRONG_OWNER_CALLS[name](alice_ticket, alice, bob)
    # and Bob's data is untouched
    assert User.objects.values().get(pk=bob.pk) == bob_before
    assert Friendship.objects.filter(owner=bob, friend=alice).exists()
    assert Ticket.objects.filter(user=bob, revoked_at__isnull=True).exists()
    assert LedgerAccount.objects.get(kind="wallet", user=bob).balance == 500


def test_ticket_require__forged_ticket_with_a_made_up_seal__refuses() -> None:
    # given: a caller builds a VerifiedTicket by hand instead of verifying one
    alice = make_user()
    genuine = login_session(alice).ticket
    forged = dataclasses.replace(genuine, seal="0" * 64)
    # when / then
    with pytest.raises(TicketRefused):
        selectors.friend_list(ticket=forged, user_id=alice.pk)


def test_ticket_require__genuine_seal_reused_for_another_user__refuses() -> None:
    # given: a ticket whose user id was swapped after sealing
    alice, bob = make_user(), make_user()
    genuine = login_session(alice).ticket
    swapped = dataclasses.replace(genuine, user_id=bob.pk)
    # when / then
    with pytest.raises(TicketRefused):
        selectors.user_get(ticket=swapped, user_id=bob.pk)


def test_ticket_require__something_that_is_not_a_ticket__refuses() -> None:
    alice = make_user()
    with pytest.raises(TicketRefused):
        ticket_require(alice.pk, user_id=alice.pk)  # type: ignore[arg-type]


def test_ticket__stored_only_as_a_sha256_of_its_secret() -> None:
    # given
    session = login_session(make_user())
    secret = session.token.split(".")[2]
    # when
    row = Ticket.objects.get(pk=session.ticket.ticket_id)
    # then
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(Ticket.objects.filter(pk=row.pk).values().first())


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # wrong secret
        lambda token: "t2" + token[2:],  # unknown version
        lambda token: token.replace(".", ":"),  # wrong separators
        lambda token: "t1.999999999999.{}".format("a" * 43),  # unknown id
        lambda token: "t1.99999999999999999999999.{}".format("a" * 43),  # id overflows bigint
        lambda token: token + "x",  # too long
        lambda token: "",
    ],
)
def test_ticket_verify__tampered_ticket__is_invalid(mangle: Callable[[str], str]) -> None:
    session = login_session(make_user())
    with pytest.raises(TicketInvalid):
        ticket_verify(token=mangle(session.token))


def test_ticket__past_its_lifetime__expires_at_the_edge_and_in_the_data_layer(
    settings: Any,
) -> None:
    # given: tickets live one hour
    settings.TICKET_TTL_SECONDS = 3600
    alice = make_user()
    session = login_session(alice)
    ticket_verify(token=session.token)
    # when: an hour and a second pass
    with time_machine.travel(timezone.now() + timedelta(seconds=3601)):
        # then: the edge refuses the text, and the data layer the verified ticket
        with pytest.raises(TicketExpired):
            ticket_verify(token=session.token)
        with pytest.raises(TicketExpired):
            selectors.user_get(ticket=session.ticket, user_id=alice.pk)


def test_ticket__within_its_lifetime__is_accepted(settings: Any) -> None:
    settings.TICKET_TTL_SECONDS = 3600
    alice = make_user()
    session = login_session(alice)
    with time_machine.travel(timezone.now() + timedelta(seconds=3500)):
        assert ticket_verify(token=session.token).user_id == alice.pk


def test_http__expired_ticket__is_401_ticket_expired(settings: Any) -> None:
    settings.TICKET_TTL_SECONDS = 60
    session = login_session(make_user())
    client = APIClient()
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        response = client.get("/api/accounts/me", headers=session.headers)
    assert response.status_code == 401
    assert response.json()["code"] == "ticket_expired"
    assert response.headers["WWW-Authenticate"].startswith("Ticket")


def test_logout__revokes_the_ticket_at_the_edge_and_in_the_data_layer() -> None:
    # given: a ticket already verified, as a websocket connection would hold it
    alice = make_user()
    session = login_session(alice)
    held = ticket_verify(token=session.token)
    # when
    devices.logout(ticket=held, user_id=alice.pk)
    # then
    with pytest.raises(TicketRevoked):
        ticket_verify(token=session.token)
    with pytest.raises(TicketRevoked):
        selectors.friend_list(ticket=held, user_id=alice.pk)


def test_logout_everywhere__revokes_every_device_but_not_other_users() -> None:
    alice, bob = make_user(), make_user()
    phone, laptop, bobs = login_session(alice), login_session(alice), login_session(bob)
    revoked = devices.logout_everywhere(ticket=phone.ticket, user_id=alice.pk)
    assert revoked == 2
    for session in (phone, laptop):
        with pytest.raises(TicketRevoked):
            ticket_verify(token=session.token)
    assert ticket_verify(token=bobs.token).user_id == bob.pk


def test_device_remove__revokes_only_that_devices_ticket() -> None:
    alice = make_user()
    phone, laptop = login_session(alice), login_session(alice)
    devices.device_remove(ticket=phone.ticket, user_id=alice.pk, device_id=laptop.device_id)
    with pytest.raises(TicketRevoked):
        ticket_verify(token=laptop.token)
    assert ticket_verify(token=phone.token).device_id == phone.device_id


def test_http__ticket_schemes__ticket_and_bearer_accepted_others_ignored() -> None:
    session = login_session(make_user())
    client = APIClient()
    assert client.get("/api/accounts/me", headers=session.headers).status_code == 200
    bearer = {"Authorization": f"Bearer {session.token}"}
    assert client.get("/api/accounts/me", headers=bearer).status_code == 200
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    response = client.get("/api/accounts/me", headers=basic)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "header",
    ["Ticket", "Ticket ", "Ticket garbage", "Ticket t1.1.short", "Ticket t1.x.{}".format("a" * 43)],
)
def test_http__malformed_ticket__is_401_ticket_invalid(header: str) -> None:
    make_user()
    response = APIClient().get("/api/accounts/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["code"] == "ticket_invalid"


@pytest.mark.django_db(transaction=True)
def test_ticket_verify_cached__only_what_ticket_verify_would_accept__and_never_any_io() -> None:
    from accounts.models import RevocationReason
    from accounts.tickets import ticket_cache_clear, ticket_verify_cached, tickets_revoke

    session = login_session(make_user())
    ticket_cache_clear()
    assert ticket_verify_cached(token=session.token) is None  # not known here yet
    verified = ticket_verify(token=session.token)  # the full check caches it
    cached = ticket_verify_cached(token=session.token)
    assert cached is not None
    assert cached.seal == verified.seal
    version, ticket_id, secret = session.token.split(".")
    wrong = f"{version}.{ticket_id}.{'A' * len(secret)}"
    assert ticket_verify_cached(token=wrong) is None
    assert ticket_verify_cached(token="t1.1.short") is None
    tickets_revoke(ticket_ids=[session.ticket.ticket_id], reason=RevocationReason.LOGOUT)
    assert ticket_verify_cached(token=session.token) is None
    with pytest.raises(TicketRevoked):
        ticket_verify(token=session.token)
