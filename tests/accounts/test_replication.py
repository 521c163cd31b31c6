"""What accounts' replication entries carry and how a replica applies them (issue 17),
in-process; over RabbitMQ between two data centres in
tests/wechat_core/test_replication_live.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.test import override_settings

from accounts.exceptions import BlockedByUser
from accounts.models import Block, FriendRequest, FriendRequestStatus, Friendship, User
from accounts.replication import replication_seed
from accounts.services.contacts import friend_requests_expire, user_block, user_unblock
from tests.factories import login_ticket, make_friends, make_user, send_request
from wechat_core.models import Campus, DataCenter, OutboxEntry, ParkedEntry
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


def homed_elsewhere(user: User) -> User:
    zz, _ = DataCenter.objects.get_or_create(code="zz", defaults={"name": "ZZ"})
    campus, _ = Campus.objects.get_or_create(code="zz-a", defaults={"datacenter": zz})
    User.objects.filter(pk=user.pk).update(home_datacenter=zz, home_campus=campus)
    return user


def written(kind: str) -> list[dict[str, Any]]:
    return [row.payload for row in OutboxEntry.objects.filter(kind=kind).order_by("id")]


class Replica:
    """Entries of data centre zz applied here, at the positions that follow."""

    def __init__(self) -> None:
        self.position = 0

    def apply(self, kind: str, payload: dict[str, Any]) -> None:
        self.position += 1
        log.entry_apply(origin="zz", position=self.position, kind=kind, payload=payload,
                        written_at=0.0)  # fmt: skip


def pairs() -> list[tuple[int, int]]:
    return list(Block.objects.values_list("blocker_id", "blocked_id"))


@pytest.mark.usefixtures("two_datacentres")
def test_block__is_replicated_and_a_copy_made_once_however_often_it_arrives() -> None:
    # given Amy blocking Bob
    amy, bob = make_user(), make_user()
    block = user_block(ticket=login_ticket(amy), user_id=amy.pk, target_id=bob.pk)
    # then the block goes into the replication log, ordered on both users
    (entry,) = written("block")
    assert (entry["id"], entry["blocker_id"], entry["blocked_id"]) == (block.pk, amy.pk, bob.pk)
    assert log.entry_keys("block", entry) == sorted([f"user:{amy.pk}", f"user:{bob.pk}"])
    # when another data centre, which has no copy yet, receives it twice (redelivered
    # by a later position)
    Block.objects.all().delete()
    zz = Replica()
    zz.apply("block", entry)
    zz.apply("block", entry)
    # then it holds one copy: the origin's id and time
    copy = Block.objects.get()
    assert (copy.pk, copy.blocker_id, copy.blocked_id) == (block.pk, amy.pk, bob.pk)
    assert copy.created_at == block.created_at
    assert not ParkedEntry.objects.exists()


@pytest.mark.usefixtures("two_datacentres")
def test_unblock__is_replicated_behind_the_block_and_removes_the_copy() -> None:
    # given Amy blocking Bob and Carol, then unblocking Bob
    amy, bob, carol = make_user(), make_user(), make_user()
    user_block(ticket=login_ticket(amy), user_id=amy.pk, target_id=bob.pk)
    user_block(ticket=login_ticket(amy), user_id=amy.pk, target_id=carol.pk)
    user_unblock(ticket=login_ticket(amy), user_id=amy.pk, target_id=bob.pk)
    # then the unblock goes out after the block, on the same ordering keys (so that
    # it never overtakes it: it would wait behind it if the block were parked)
    (unblocked,) = written("block_deleted")
    assert unblocked == {"blocker_id": amy.pk, "blocked_id": bob.pk}
    block_of_bob = written("block")[0]
    assert log.entry_keys("block_deleted", unblocked) == log.entry_keys("block", block_of_bob)
    # when another data centre replays them all, the unblock twice
    Block.objects.all().delete()
    zz = Replica()
    for entry in written("block"):
        zz.apply("block", entry)
    assert sorted(pairs()) == sorted([(amy.pk, bob.pk), (amy.pk, carol.pk)])
    zz.apply("block_deleted", unblocked)
    zz.apply("block_deleted", unblocked)
    # then only Carol's block is left there
    assert pairs() == [(amy.pk, carol.pk)]
    assert not ParkedEntry.objects.exists()


@pytest.mark.usefixtures("two_datacentres")
def test_friend_request__from_a_user_blocked_by_someone_homed_elsewhere__refused_at_home() -> None:
    # given Zed blocking Bob at Zed's home (as its replication log carries it)
    zed, bob = make_user(), make_user()
    user_block(ticket=login_ticket(zed), user_id=zed.pk, target_id=bob.pk)
    (entry,) = written("block")
    # and this data centre being Bob's home, not Zed's, with no copy of the block yet
    Block.objects.all().delete()
    homed_elsewhere(zed)
    # when the block is replayed here
    Replica().apply("block", entry)
    # then Bob's friend request to Zed is refused here, as for a pair homed together
    with pytest.raises(BlockedByUser):
        send_request(bob, zed)
    assert not FriendRequest.objects.exists()


ELSEWHERE = 9 * 10**12  # ids of rows made in data centre zz (index 9)


@pytest.mark.usefixtures("two_datacentres")
def test_friend_requests_expire__replicates_those_mastered_here_leaves_the_copies() -> None:
    # given a request Amy sent here to Zed, homed elsewhere, and a copy of one Zed
    # sent at his home to Bob
    amy, bob, zed = make_user(), make_user(), make_user()
    homed_elsewhere(zed)
    mine = send_request(amy, zed)
    theirs = FriendRequest.objects.create(
        id=ELSEWHERE + 1, from_user=zed, to_user=bob, expires_at=mine.expires_at
    )
    # when the sweep runs after they expired
    with time_machine.travel(mine.expires_at + dt.timedelta(minutes=1)):
        swept = friend_requests_expire()
    # then the one mastered here is expired, and goes out as such
    assert swept == 1
    assert FriendRequest.objects.get(pk=mine.pk).status == FriendRequestStatus.EXPIRED
    assert [(e["id"], e["status"]) for e in written("friend_request")][-1] == (mine.pk, "expired")
    # and the copy waits for its master's entry (not expired, nothing written)
    assert FriendRequest.objects.get(pk=theirs.pk).status == FriendRequestStatus.PENDING
    assert theirs.pk not in [e["id"] for e in written("friend_request")]


@pytest.mark.usefixtures("two_datacentres")
def test_replay__of_an_expiry__leaves_a_copy_answered_in_time_alone() -> None:
    # given Amy's requests to Bob and Carol, sent at her home, as its log carries
    # them; and this data centre as Bob's and Carol's home, where Bob accepted his
    # in time (Carol did not answer)
    amy, bob, carol = make_user(), make_user(), make_user()
    to_bob, to_carol = send_request(amy, bob), send_request(amy, carol)
    with time_machine.travel(to_bob.expires_at + dt.timedelta(minutes=1)):
        friend_requests_expire()
    expired = {e["id"]: e for e in written("friend_request") if e["status"] == "expired"}
    FriendRequest.objects.filter(pk=to_bob.pk).update(status=FriendRequestStatus.ACCEPTED)
    FriendRequest.objects.filter(pk=to_carol.pk).update(status=FriendRequestStatus.PENDING)
    # when the master's expiries are replayed here
    zz = Replica()
    zz.apply("friend_request", expired[to_bob.pk])
    zz.apply("friend_request", expired[to_carol.pk])
    # then Bob's answer stands, and Carol's copy expires
    assert FriendRequest.objects.get(pk=to_bob.pk).status == FriendRequestStatus.ACCEPTED
    assert FriendRequest.objects.get(pk=to_carol.pk).status == FriendRequestStatus.EXPIRED


def test_replication_seed__writes_what_existed_before_once_and_a_peer_gets_the_block() -> None:
    # given users, a friendship, a block and a pending request made while this was
    # the only data centre (nothing went into the replication log)
    amy, bob, carol, dan = make_user(), make_user(), make_user(), make_user()
    make_friends(amy, bob)
    user_block(ticket=login_ticket(amy), user_id=amy.pk, target_id=carol.pk)
    pending = send_request(dan, amy)
    assert not OutboxEntry.objects.exists()
    here = settings.DATACENTER
    two = {here: {"index": 0, "endpoints": []}, "zz": {"index": 9, "endpoints": []}}
    # when data centres are switched on and this one is seeded for its peer
    with override_settings(DATACENTERS=two, MULTI_DATACENTER=True, REPLICATION_BROKER_URL="x"):
        counts = replication_seed()
    # then every row of it it masters is in the log once, the users first
    homed_here = set(User.objects.filter(home_datacenter_id=here).values_list("pk", flat=True))
    assert {amy.pk, bob.pk, carol.pk, dan.pk} <= homed_here
    assert counts == {"user": len(homed_here), "friendship": 2, "block": 1, "friend_request": 1}
    kinds = list(OutboxEntry.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["user"] * len(homed_here) + ["friendship"] * 2 + ["block", "friend_request"]
    assert {e["id"] for e in written("user")} == homed_here
    assert [e["id"] for e in written("friend_request")] == [pending.pk]
    # and a peer without the block (as this database, the block deleted) that
    # replays the log has it: Carol's home refuses her messages to Amy
    Block.objects.all().delete()
    zz = Replica()
    for entry in OutboxEntry.objects.order_by("id"):
        zz.apply(entry.kind, entry.payload)
    assert pairs() == [(amy.pk, carol.pk)]
    assert not ParkedEntry.objects.exists()
