"""What accounts' replication entries carry and how a replica applies them (issue 17),
in-process; over RabbitMQ between two data centres in
tests/wechat_core/test_replication_live.py."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import FriendRequest, FriendRequestStatus, Friendship
from accounts.services.contacts import user_block
from tests.factories import login_ticket, make_friends, make_user, send_request
from wechat_core.models import OutboxEntry
from wechat_core.replication import log

pytestmark = pytest.mark.django_db


@pytest.mark.usefixtures("two_datacentres")
def test_replay__of_a_friendship__keeps_the_origins_time_not_the_replays() -> None:
    # given two users who became friends, as the replication log carries it
    amy, zed = make_user(), make_user()
    make_friends(amy, zed)
    origin = {(row.owner_id, row.friend_id): row.created_at for row in Friendship.objects.all()}
    entries = OutboxEntry.objects.filter(kind="friendship").order_by("id")
    # when another data centre, which has no friendship of theirs yet, replays them
    Friendship.objects.all().delete()
    for position, entry in enumerate(entries, start=1):
        log.entry_apply(origin="zz", position=position, kind="friendship", payload=entry.payload,
                        written_at=entry.created_at.timestamp())  # fmt: skip
    # then its copies carry the origin's times, not the time of the replay
    replica = {(row.owner_id, row.friend_id): row.created_at for row in Friendship.objects.all()}
    assert replica == origin
    assert len(replica) == 2
    assert all(isinstance(when, dt.datetime) for when in replica.values())


@pytest.mark.usefixtures("two_datacentres")
def test_block__declines_the_pending_request_in_the_other_data_centres_too() -> None:
    # given a pending request from Bob to Amy, and one from Amy to Carol
    amy, bob, carol = make_user(), make_user(), make_user()
    from_bob = send_request(bob, amy)
    to_carol = send_request(amy, carol)
    # when Amy blocks Bob
    user_block(ticket=login_ticket(amy), user_id=amy.pk, target_id=bob.pk)
    # then the declined request goes into the replication log, the other one does not again
    declined = FriendRequest.objects.get(pk=from_bob.pk)
    assert declined.status == FriendRequestStatus.DECLINED
    entries = OutboxEntry.objects.filter(kind="friend_request").order_by("id")
    assert [(e.payload["id"], e.payload["status"]) for e in entries] == [
        (from_bob.pk, "pending"),
        (to_carol.pk, "pending"),
        (from_bob.pk, "declined"),
    ]
    # when another data centre, whose copy of it is still pending, replays it (twice)
    FriendRequest.objects.filter(pk=from_bob.pk).update(
        status=FriendRequestStatus.PENDING, responded_at=None
    )
    last = entries.last()
    assert last is not None
    for position in (1, 2):
        log.entry_apply(origin="zz", position=position, kind="friend_request",
                        payload=last.payload, written_at=0.0)  # fmt: skip
    # then its copy is declined too, at the origin's time; Carol's is still pending
    copy = FriendRequest.objects.get(pk=from_bob.pk)
    assert (copy.status, copy.responded_at) == (FriendRequestStatus.DECLINED, declined.responded_at)
    assert FriendRequest.objects.get(pk=to_carol.pk).status == FriendRequestStatus.PENDING
