"""createdemo: the embedded mode's demo data, idempotent, refused outside SQLite."""

from __future__ import annotations

import io

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


def test_createdemo__outside_the_embedded_sqlite_database__refuses_and_creates_nobody() -> None:
    # given: this suite's PostgreSQL database, as a production one would be
    # when / then
    with pytest.raises(CommandError, match="published in the README"):
        call_command("createdemo", stdout=io.StringIO())
    assert not User.objects.filter(email="ops@example.com").exists()
    assert not User.objects.exists()


def test_createdemo__makes_two_friends_a_pending_request_and_an_operator() -> None:
    # (on PostgreSQL, which createdemo refuses unless told otherwise)
    call_command("createdemo", any_database=True, stdout=io.StringIO())
    alice = User.objects.get(email="alice@example.com")
    bob = User.objects.get(email="bob@example.com")
    assert Friendship.objects.filter(owner=alice, friend=bob).exists()
    assert Friendship.objects.filter(owner=bob, friend=alice).exists()
    assert FriendRequest.objects.filter(to_user=alice, status="pending").count() == 1
    assert User.objects.get(email="ops@example.com").is_staff
    assert alice.check_password("alice-demo-2026")
    assert Ticket.objects.filter(revoked_at__isnull=True).count() == 0


def test_createdemo__run_twice__changes_nothing() -> None:
    call_command("createdemo", any_database=True, stdout=io.StringIO())
    first = snapshot()
    call_command("createdemo", any_database=True, stdout=io.StringIO())
    assert snapshot() == first
