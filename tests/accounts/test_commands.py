"""Management commands: createdemo (idempotent) and createoperator."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Device, FriendRequest, Friendship, Ticket, User, WeChatIdClaim

pytestmark = pytest.mark.django_db


def snapshot() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "friendships": Friendship.objects.count(),
        "requests": FriendRequest.objects.count(),
        "wechat_ids": WeChatIdClaim.objects.count(),
        "devices": Device.objects.count(),
        "live_tickets": Ticket.objects.filter(revoked_at__isnull=True).count(),
    }


def test_createdemo__makes_two_friends_a_pending_request_and_an_operator() -> None:
    call_command("createdemo", stdout=io.StringIO())
    alice = User.objects.get(email="alice@example.com")
    bob = User.objects.get(email="bob@example.com")
    assert Friendship.objects.filter(owner=alice, friend=bob).exists()
    assert Friendship.objects.filter(owner=bob, friend=alice).exists()
    assert FriendRequest.objects.filter(to_user=alice, status="pending").count() == 1
    assert User.objects.get(email="ops@example.com").is_staff
    assert alice.check_password("alice-demo-2026")
    assert Ticket.objects.filter(revoked_at__isnull=True).count() == 0


def test_createdemo__run_twice__changes_nothing() -> None:
    call_command("createdemo", stdout=io.StringIO())
    first = snapshot()
    call_command("createdemo", stdout=io.StringIO())
    assert snapshot() == first


def test_createoperator__with_password_from_the_environment(monkeypatch: Any) -> None:
    monkeypatch.setenv("OPERATOR_PASSWORD", "an-operator-passphrase")
    call_command("createoperator", email="Ops@Example.com", noinput=True, stdout=io.StringIO())
    operator = User.objects.get(email="ops@example.com")
    assert operator.is_staff
    assert not operator.is_superuser
    assert operator.check_password("an-operator-passphrase")


def test_createoperator__without_a_password_and_no_prompt__fails_clearly(monkeypatch: Any) -> None:
    monkeypatch.delenv("OPERATOR_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="OPERATOR_PASSWORD"):
        call_command("createoperator", email="ops@example.com", noinput=True)
    assert not User.objects.filter(email="ops@example.com").exists()


def test_createoperator__weak_password__is_refused(monkeypatch: Any) -> None:
    monkeypatch.setenv("OPERATOR_PASSWORD", "123")
    with pytest.raises(CommandError, match="password"):
        call_command("createoperator", email="ops@example.com", noinput=True)


def test_createoperator__existing_user__is_promoted_keeping_the_password() -> None:
    from tests.factories import PASSWORD, make_user

    user = make_user(email="promote@example.com")
    call_command(
        "createoperator", email="promote@example.com", superuser=True, stdout=io.StringIO()
    )
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (True, True)
    assert user.check_password(PASSWORD)
