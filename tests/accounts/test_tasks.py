"""Periodic housekeeping runs on a real Celery worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import FriendRequest, FriendRequestStatus, Ticket
from accounts.tasks import expire_friend_requests, purge_dead_tickets
from devtools.processes import ServerProcess
from tests.factories import login_session, make_user, send_request

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_expire_friend_requests__on_the_worker__marks_only_overdue_requests(
    celery_worker: ServerProcess,
) -> None:
    # given: one request past its seven days, one fresh
    alice = make_user()
    overdue = send_request(make_user(), alice)
    fresh = send_request(make_user(), alice)
    FriendRequest.objects.filter(pk=overdue.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    # when
    result = expire_friend_requests.apply_async(queue="default").get(timeout=30)
    # then
    assert result == 1
    overdue.refresh_from_db()
    fresh.refresh_from_db()
    assert (overdue.status, fresh.status) == (
        FriendRequestStatus.EXPIRED,
        FriendRequestStatus.PENDING,
    )


def test_purge_dead_tickets__on_the_worker__deletes_long_dead_tickets_only(
    celery_worker: ServerProcess,
) -> None:
    user = make_user()
    dead, alive = login_session(user), login_session(user)
    Ticket.objects.filter(pk=dead.ticket.ticket_id).update(
        expires_at=timezone.now() - timedelta(days=31)
    )
    assert purge_dead_tickets.delay().get(timeout=30) == 1
    assert list(Ticket.objects.values_list("pk", flat=True)) == [alive.ticket.ticket_id]
