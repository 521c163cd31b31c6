"""What accounts' replication entries carry and how a replica applies them (issue 17),
in-process; over RabbitMQ between two data centres in
tests/wechat_core/test_replication_live.py."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.models import Friendship
from tests.factories import make_friends, make_user
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
