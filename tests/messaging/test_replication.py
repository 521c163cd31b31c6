"""What a conversation's events put into the replication log (issue 17): the
conversation and its members with the first event replicated and with system
events (membership changes), only the conversation's id with the others; nothing
while no member is homed elsewhere. Read positions go out as `membership_read`
and only ever move a copy forward. The group commit writes the same entries for
the sends of its batch. A block holds on both sides: a replayed block
stops the blocked user's sends at their home, and the master drops a forwarded
send the block reached first. Replay over RabbitMQ is tested in
tests/wechat_core/test_replication_live.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import psycopg
import pytest
from django.db import connection

from accounts.exceptions import BlockedByUser
from accounts.models import User
from accounts.services.contacts import user_block, user_unblock
from accounts.types import VerifiedTicket
from messaging.models import Conversation, Membership, Message
from messaging.selectors import conversation_list
from messaging.services.conversations import direct_conversation_ensure, group_create, group_invite
from messaging.services.sending import conversation_read, message_send
from messaging.store.groupcommit import GroupCommitter, Outcome, Refused, SendRequest, Written
from messaging.types import OutgoingContent, SendAck
from tests.factories import login_ticket, make_friends, make_user
from wechat_core.models import (
    Campus,
    DataCenter,
    OutboxEntry,
    ParkedEntry,
    ReplayError,
    SyncEntry,
)
from wechat_core.replication import log, replay
from wechat_core.sync.models import UserSequence

pytestmark = pytest.mark.django_db


def homed_elsewhere(user: User) -> User:
    zz, _ = DataCenter.objects.get_or_create(code="zz", defaults={"name": "ZZ"})
    campus, _ = Campus.objects.get_or_create(code="zz-a", defaults={"datacenter": zz})
    User.objects.filter(pk=user.pk).update(home_datacenter=zz, home_campus=campus)
    return user


def send(user: User, conversation_id: int, text: str) -> SendAck:
    return message_send(
        ticket=login_ticket(user),
        user_id=user.pk,
        conversation_id=conversation_id,
        client_msg_id=uuid.uuid4().hex,
        content=OutgoingContent(kind="text", text=text),
    )


def replicated() -> list[dict[str, Any]]:
    rows = OutboxEntry.objects.filter(kind="conversation_event").order_by("id")
    return [row.payload for row in rows]


def member_ids(payload: dict[str, Any]) -> list[int]:
    return sorted(member["user_id"] for member in payload["members"])


@pytest.mark.usefixtures("two_datacentres")
def test_direct_chat__with_a_peer_homed_elsewhere__first_event_whole_then_only_the_id() -> None:
    # given a 1:1 chat (opened without any event) with a friend homed elsewhere
    amy, zed = make_user(), make_user()
    make_friends(amy, zed)
    homed_elsewhere(zed)
    chat = direct_conversation_ensure(amy.pk, zed.pk).pk
    # when Amy writes three messages
    for n in range(3):
        send(amy, chat, f"hello {n}")
    # then the first carries the conversation and its members, the others its id only
    first, *rest = replicated()
    assert first["conversation"]["kind"] == "direct"
    assert member_ids(first) == sorted([amy.pk, zed.pk])
    assert [(entry["conversation"], entry["members"]) for entry in rest] == [
        ({"id": chat}, None)
    ] * 2
    assert [entry["message"]["seq"] for entry in [first, *rest]] == [1, 2, 3]
    assert Conversation.objects.get(pk=chat).has_remote_members is True


@pytest.mark.usefixtures("two_datacentres")
def test_group__a_member_homed_elsewhere_invited__replicated_from_the_invitation_on() -> None:
    # given a group of people homed here
    amy, bob, zed = make_user(), make_user(), make_user()
    make_friends(amy, bob)
    make_friends(amy, zed)
    homed_elsewhere(zed)
    group = group_create(ticket=login_ticket(amy), user_id=amy.pk, name="g", member_ids=[bob.pk])
    send(amy, group.pk, "among us")
    assert replicated() == []
    assert Conversation.objects.get(pk=group.pk).has_remote_members is False
    # when Amy invites a friend homed elsewhere, then writes
    group_invite(ticket=login_ticket(amy), user_id=amy.pk, conversation_id=group.pk,
                 member_ids=[zed.pk])  # fmt: skip
    send(amy, group.pk, "welcome")
    # then the invitation (a system event) carries the members, the message only the id
    invitation, welcome = replicated()
    assert invitation["message"]["kind"] == "system"
    assert invitation["conversation"]["name"] == "g"
    assert member_ids(invitation) == sorted([amy.pk, bob.pk, zed.pk])
    assert welcome["conversation"] == {"id": group.pk}
    assert welcome["members"] is None
    assert Conversation.objects.get(pk=group.pk).has_remote_members is True


def test_one_datacentre__nothing_is_replicated_nor_worked_out() -> None:
    amy, zed = make_user(), make_user()
    make_friends(amy, zed)
    chat = direct_conversation_ensure(amy.pk, zed.pk).pk
    send(amy, chat, "hello")
    assert not OutboxEntry.objects.exists()
    assert Conversation.objects.get(pk=chat).has_remote_members is None


@pytest.mark.usefixtures("two_datacentres")
def test_replay__of_a_first_event__keeps_the_origins_times_not_the_replays() -> None:
    # given a chat with a friend homed elsewhere, opened (and joined) long ago
    amy, zed = make_user(), make_user()
    make_friends(amy, zed)
    homed_elsewhere(zed)
    chat = direct_conversation_ensure(amy.pk, zed.pk).pk
    long_ago = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    Conversation.objects.filter(pk=chat).update(created_at=long_ago)
    Membership.objects.filter(conversation_id=chat).update(joined_at=long_ago)
    # and Amy's first message into it, as the replication log carries it
    send(amy, chat, "hello")
    sent = Message.objects.get(conversation_id=chat)
    (entry,) = replicated()
    # when another data centre, which has none of it yet, replays the entry
    Conversation.objects.filter(pk=chat).delete()
    log.entry_apply(origin="zz", position=1, kind="conversation_event", payload=entry,
                    written_at=sent.created_at.timestamp())  # fmt: skip
    # then its copies carry the origin's times, not the time of the replay
    assert Message.objects.get(pk=sent.pk).created_at == sent.created_at
    assert Conversation.objects.get(pk=chat).created_at == long_ago
    joined = Membership.objects.filter(conversation_id=chat).values_list("joined_at", flat=True)
    assert list(joined) == [long_ago, long_ago]


ELSEWHERE = 9 * 10**12  # ids of rows made in data centre zz (index 9)


def event(conversation: int, seq: int, sender: int, text: str,
          whole: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """A conversation_event entry of a group mastered in zz (whole: its first)."""
    return {
        "conversation": whole["conversation"] if whole else {"id": conversation},
        "members": whole["members"] if whole else None,
        "message": {"id": ELSEWHERE + (conversation - ELSEWHERE) * 100 + seq, "seq": seq,
                    "sender_id": sender, "kind": "text", "body": {"text": text},
                    "client_msg_id": None, "created_at": "2026-12-07T00:00:00+00:00"},
    }  # fmt: skip


def first_of(conversation: int, owner: int, member_ids: list[int]) -> dict[str, Any]:
    return {
        "conversation": {"id": conversation, "kind": "group", "direct_key": None, "name": "g",
                         "announcement": "", "owner_id": owner, "member_count": len(member_ids)},
        "members": [{"user_id": user_id, "role": "member", "joined_seq": 1, "left_seq": None}
                    for user_id in member_ids],
    }  # fmt: skip


def texts_in_log(user: User, conversation: int) -> list[str]:
    ids = SyncEntry.objects.filter(user=user, conversation_id=conversation).order_by("seq")
    texts = dict(Message.objects.filter(conversation_id=conversation).values_list("id", "body"))
    return [texts[entry.message_id]["text"] for entry in ids if entry.message_id in texts]


@pytest.mark.usefixtures("two_datacentres")
def test_replay__a_parked_first_event__its_conversation_waits_the_others_go_on() -> None:
    # given users here and a user whose own entry has not arrived here (yet)
    amy, zed, ghost = make_user(), make_user(), make_user()
    ghost_entry = OutboxEntry.objects.filter(kind="user", payload__id=ghost.pk).latest("id")
    User.objects.filter(pk=ghost.pk).delete()
    x, y = ELSEWHERE + 1, ELSEWHERE + 2
    # when two groups' events arrive from zz, the first of x naming that user (it
    # cannot be applied), the events of the two groups interleaved
    stream = [
        event(x, 1, amy.pk, "x1", first_of(x, amy.pk, [amy.pk, ghost.pk])),
        event(y, 1, amy.pk, "y1", first_of(y, amy.pk, [amy.pk, zed.pk])),
        event(x, 2, amy.pk, "x2"),
        event(y, 2, amy.pk, "y2"),
        event(x, 3, amy.pk, "x3"),
    ]
    entries = [log.ReplayEntry(position, "conversation_event", payload, 0.0)
               for position, payload in enumerate(stream, start=1)]  # fmt: skip
    replay.batch_apply(origin="zz", entries=entries, pause=lambda seconds: None)
    # then y's events reach Amy; x's first is parked after its attempts, and x's
    # later events wait behind it, untried
    assert texts_in_log(amy, y) == ["y1", "y2"]
    assert texts_in_log(amy, x) == []
    parked = ParkedEntry.objects.order_by("position").values_list("position", "behind")
    assert list(parked) == [(1, None), (3, 1), (5, 1)]
    assert set(ReplayError.objects.values_list("position", flat=True)) == {1}
    # when the user's entry arrives and an operator replays the parked event
    log.entry_apply(origin="zz", position=6, kind="user", payload=ghost_entry.payload,
                    written_at=0.0)  # fmt: skip
    log.parked_entry_replay(parked_id=ParkedEntry.objects.get(position=1).pk)
    # then x's events reach Amy, in x's order, and nothing is parked any more
    assert texts_in_log(amy, x) == ["x1", "x2", "x3"]
    assert not ParkedEntry.objects.exists()


def read(user: User, conversation_id: int, seq: int) -> None:
    conversation_read(ticket=login_ticket(user), user_id=user.pk,
                      conversation_id=conversation_id, seq=seq)  # fmt: skip


def reads_replicated() -> list[dict[str, Any]]:
    rows = OutboxEntry.objects.filter(kind="membership_read").order_by("id")
    return [row.payload for row in rows]


def read_position(user: User, conversation_id: int) -> int:
    return Membership.objects.get(conversation_id=conversation_id, user=user).read_seq


def unread(user: User, conversation_id: int, ticket: VerifiedTicket | None = None) -> int:
    listed = conversation_list(ticket=ticket or login_ticket(user), user_id=user.pk)
    return next(int(m.unread) for m in listed if m.conversation_id == conversation_id)  # type: ignore[attr-defined]


class Replica:
    """Entries of data centre zz applied here, at the positions that follow."""

    def __init__(self) -> None:
        self.position = 0

    def apply(self, kind: str, payload: dict[str, Any]) -> None:
        self.position += 1
        log.entry_apply(origin="zz", position=self.position, kind=kind, payload=payload,
                        written_at=0.0)  # fmt: skip


@pytest.mark.usefixtures("two_datacentres")
def test_read__in_a_chat_with_a_peer_homed_elsewhere__the_position_is_replicated() -> None:
    # given Amy's chat with a friend homed elsewhere, three messages in it
    amy, zed = make_user(), make_user()
    make_friends(amy, zed)
    homed_elsewhere(zed)
    chat = direct_conversation_ensure(amy.pk, zed.pk).pk
    for n in range(3):
        send(amy, chat, f"hello {n}")
    # when Amy reads up to the second, then (from a late device) up to the first
    read(amy, chat, 2)
    read(amy, chat, 1)
    # then the move forward went out, ordered on the conversation; the stale one did not
    assert reads_replicated() == [{"conversation_id": chat, "user_id": amy.pk, "read_seq": 2}]
    assert log.entry_keys("membership_read", reads_replicated()[0]) == [f"conversation:{chat}"]


@pytest.mark.usefixtures("two_datacentres")
def test_read__in_a_group_all_homed_here__nothing_is_replicated() -> None:
    amy, bob = make_user(), make_user()
    make_friends(amy, bob)
    group = group_create(ticket=login_ticket(amy), user_id=amy.pk, name="g", member_ids=[bob.pk])
    send(amy, group.pk, "among us")
    read(bob, group.pk, 2)
    assert read_position(bob, group.pk) == 2
    assert reads_replicated() == []


@pytest.mark.usefixtures("two_datacentres")
def test_read__in_a_group_mastered_elsewhere__the_position_goes_to_its_master() -> None:
    # given a group mastered in zz, replayed here, with a message for Amy (homed here)
    amy, zed = make_user(), make_user()
    x = ELSEWHERE + 3
    zz = Replica()
    zz.apply("conversation_event", event(x, 1, zed.pk, "x1", first_of(x, zed.pk, [amy.pk, zed.pk])))
    # when Amy reads it here, at home
    read(amy, x, 1)
    # then the position goes out for the group's master and its other copies
    assert reads_replicated() == [{"conversation_id": x, "user_id": amy.pk, "read_seq": 1}]


@pytest.mark.usefixtures("two_datacentres")
def test_replay__of_a_read_position__moves_the_copy_only_forward() -> None:
    # given a chat opened here with a friend homed elsewhere, three messages from Amy,
    # none of them read by Zed as far as this copy of his membership knows
    amy, zed = make_user(), make_user()
    make_friends(amy, zed)
    # (his ticket from before his home moved away: what he would be shown here if
    # he were served here)
    ticket = login_ticket(zed)
    homed_elsewhere(zed)
    chat = direct_conversation_ensure(amy.pk, zed.pk).pk
    for n in range(3):
        send(amy, chat, f"hello {n}")
    assert (read_position(zed, chat), unread(zed, chat, ticket)) == (0, 3)
    zz = Replica()
    # when his home says he read up to the second
    zz.apply("membership_read", {"conversation_id": chat, "user_id": zed.pk, "read_seq": 2})
    # then the copy has it, and what is computed here from it follows
    assert (read_position(zed, chat), unread(zed, chat, ticket)) == (2, 1)
    # when the same position arrives again, then an older one late
    zz.apply("membership_read", {"conversation_id": chat, "user_id": zed.pk, "read_seq": 2})
    zz.apply("membership_read", {"conversation_id": chat, "user_id": zed.pk, "read_seq": 1})
    # then nothing moves back
    assert (read_position(zed, chat), unread(zed, chat, ticket)) == (2, 1)
    # and a newer one still moves it on; Amy's own position is untouched throughout
    zz.apply("membership_read", {"conversation_id": chat, "user_id": zed.pk, "read_seq": 3})
    assert (read_position(zed, chat), unread(zed, chat, ticket)) == (3, 0)
    assert read_position(amy, chat) == 0
    assert not ParkedEntry.objects.exists()


@pytest.mark.usefixtures("two_datacentres")
def test_replay__of_a_read_position__whose_membership_is_not_here__changes_nothing() -> None:
    # (a third data centre's read arriving before the conversation's master's events)
    zed = make_user()
    Replica().apply(
        "membership_read", {"conversation_id": ELSEWHERE + 4, "user_id": zed.pk, "read_seq": 5}
    )
    assert not Membership.objects.exists()
    assert not ParkedEntry.objects.exists()


@pytest.mark.usefixtures("two_datacentres")
def test_invitation__members_carry_their_read_positions() -> None:
    # given a group with a friend homed elsewhere, two messages in it
    amy, bob, zed = make_user(), make_user(), make_user()
    make_friends(amy, bob)
    make_friends(amy, zed)
    homed_elsewhere(zed)
    group = group_create(ticket=login_ticket(amy), user_id=amy.pk, name="g", member_ids=[zed.pk])
    send(amy, group.pk, "before bob")
    read(amy, group.pk, 2)
    # when Amy invites Bob
    group_invite(ticket=login_ticket(amy), user_id=amy.pk, conversation_id=group.pk,
                 member_ids=[bob.pk])  # fmt: skip
    # then the invitation's members carry where each has read (Bob: up to his joining)
    invitation = replicated()[-1]
    positions = {member["user_id"]: member["read_seq"] for member in invitation["members"]}
    assert positions == {amy.pk: 2, zed.pk: 0, bob.pk: 2}


@pytest.mark.usefixtures("two_datacentres")
def test_replay__of_members__a_new_copy_starts_at_its_read_position_no_copy_moves_back() -> None:
    # given a group mastered in zz, its first events replayed here: Amy and Bob
    # (homed here) in it, Amy having read all of it at home
    amy, bob, zed = make_user(), make_user(), make_user()
    x = ELSEWHERE + 5
    whole = first_of(x, zed.pk, [amy.pk, zed.pk])
    zz = Replica()
    zz.apply("conversation_event", event(x, 1, zed.pk, "x1", whole))
    zz.apply("conversation_event", event(x, 2, zed.pk, "x2"))
    read(amy, x, 2)
    # when Bob's invitation arrives, its members as the master has them (Amy's
    # position there lagging: it has not replayed her read yet)
    members = [
        {**member, "read_seq": 0} for member in whole["members"]
    ] + [{"user_id": bob.pk, "role": "member", "joined_seq": 3, "left_seq": None,
          "read_seq": 2}]  # fmt: skip
    invitation = event(x, 3, zed.pk, "x3", {"conversation": whole["conversation"],
                                             "members": members})  # fmt: skip
    invitation["message"].update(kind="system", body={"event": "joined", "by": zed.pk,
                                                      "users": [bob.pk]})  # fmt: skip
    zz.apply("conversation_event", invitation)
    # then Bob's new copy starts read up to his joining (what came before is not
    # unread for him), and Amy's stays where she read it
    assert (read_position(bob, x), unread(bob, x)) == (2, 0)
    assert (read_position(amy, x), unread(amy, x)) == (2, 0)


@pytest.mark.usefixtures("two_datacentres")
def test_send__by_a_user_blocked_by_a_friend_homed_elsewhere__refused_at_home() -> None:
    # given Bob's chat with a friend, Zed, and Zed blocking, then unblocking, Bob at
    # Zed's home (as its replication log carries it)
    bob, zed = make_user(), make_user()
    make_friends(bob, zed)
    chat = direct_conversation_ensure(bob.pk, zed.pk).pk
    user_block(ticket=login_ticket(zed), user_id=zed.pk, target_id=bob.pk)
    user_unblock(ticket=login_ticket(zed), user_id=zed.pk, target_id=bob.pk)
    block = OutboxEntry.objects.get(kind="block").payload
    unblock = OutboxEntry.objects.get(kind="block_deleted").payload
    # and this data centre being Bob's home, not Zed's, with no copy of either yet
    homed_elsewhere(zed)
    send(bob, chat, "before")
    # when the block is replayed here
    zz = Replica()
    zz.apply("block", block)
    # then Bob's messages to Zed are refused here, as for a pair homed together
    with pytest.raises(BlockedByUser):
        send(bob, chat, "after the block")
    # and go through again once the unblock is replayed
    zz.apply("block_deleted", unblock)
    send(bob, chat, "after the unblock")
    stored = Message.objects.filter(conversation_id=chat).order_by("seq")
    assert [body["text"] for body in stored.values_list("body", flat=True)] == [
        "before",
        "after the unblock",
    ]


def forwarded(sender: User, conversation_id: int, text: str) -> dict[str, Any]:
    """A `message_forward` entry: a send at the sender's home, checked there."""
    return {"sender_id": sender.pk, "conversation_id": conversation_id, "kind": "text",
            "body": {"text": text}, "client_msg_id": uuid.uuid4().hex}  # fmt: skip


@pytest.mark.usefixtures("two_datacentres")
def test_forwarded_send__to_a_blocker__dropped_at_the_master() -> None:
    # given a 1:1 chat mastered here between Amy and a friend homed elsewhere, Zed
    amy, zed = make_user(), make_user()
    make_friends(amy, zed)
    homed_elsewhere(zed)
    chat = direct_conversation_ensure(amy.pk, zed.pk).pk
    zz = Replica()
    zz.apply("message_forward", forwarded(zed, chat, "hi"))
    # when Amy blocks Zed here, and a send of Zed's arrives that his home checked
    # before it had the block
    user_block(ticket=login_ticket(amy), user_id=amy.pk, target_id=zed.pk)
    zz.apply("message_forward", forwarded(zed, chat, "still there?"))
    # then it is dropped: not stored, not in Amy's log, nothing parked
    assert texts_in_log(amy, chat) == ["hi"]
    assert Message.objects.filter(conversation_id=chat).count() == 1
    assert not ParkedEntry.objects.exists()
    # and once Amy unblocks him, his sends are stored again
    user_unblock(ticket=login_ticket(amy), user_id=amy.pk, target_id=zed.pk)
    zz.apply("message_forward", forwarded(zed, chat, "hello again"))
    assert texts_in_log(amy, chat) == ["hi", "hello again"]


@pytest.mark.usefixtures("two_datacentres")
def test_send__into_the_second_copy_of_a_chat_opened_in_both_data_centres__is_forwarded() -> None:
    # given Amy's chat with Zed (homed elsewhere) opened here, and the one Zed
    # opened at his home at the same time replayed here (its key suffixed "@zz")
    amy, zed = make_user(), make_user()
    make_friends(amy, zed)
    homed_elsewhere(zed)
    direct_conversation_ensure(amy.pk, zed.pk)
    theirs = ELSEWHERE + 6
    whole = first_of(theirs, zed.pk, [amy.pk, zed.pk])
    key = f"{min(amy.pk, zed.pk)}:{max(amy.pk, zed.pk)}"
    whole["conversation"].update(kind="direct", name="", owner_id=None, direct_key=key)
    Replica().apply("conversation_event", event(theirs, 1, zed.pk, "hi", whole))
    assert Conversation.objects.get(pk=theirs).direct_key == f"{key}@zz"
    # when Amy answers in that copy
    ack = send(amy, theirs, "hi back")
    # then the send is checked (the peer found in the suffixed key) and forwarded
    assert (ack.message_id, ack.seq) == (0, 0)
    assert OutboxEntry.objects.filter(
        kind="message_forward", payload__conversation_id=theirs
    ).exists()


def test_a_direct_chats_later_copy__its_key_suffixed__still_names_the_peer_in_the_list() -> None:
    from messaging import wire

    row = {"id": 1, "kind": "direct", "name": "", "direct_key": "3:7@zz", "member_count": 2,
           "last_seq": 0}  # fmt: skip
    assert wire.conversation_view(row, 3)["peer"] == 7
    assert wire.conversation_view(row, 7)["peer"] == 3


# --- The group commit with data centres (messaging/store/groupcommit.py) ------------------


def group_commit(requests: list[SendRequest]) -> list[Outcome]:
    """The requests through one GroupCommitter, all at once (one batch, or more)."""

    async def main() -> list[Outcome]:
        committer = GroupCommitter(on_committed=lambda written: None)
        try:
            return list(await asyncio.gather(*(committer.submit(r) for r in requests)))
        finally:
            await committer.aclose()

    return asyncio.run(main())


def text(sender: User, conversation_id: int, words: str) -> SendRequest:
    return SendRequest(sender.pk, conversation_id, uuid.uuid4().hex, "text", {"text": words})


def as_event_replicate_writes(message: Message) -> dict[str, Any]:
    """The entry messaging.replication.event_replicate writes for a text message of
    a conversation whose remote members are known (the id only, no members)."""
    return {
        "conversation": {"id": message.conversation_id},
        "members": None,
        "message": {
            "id": message.pk,
            "seq": message.seq,
            "sender_id": message.sender_id,
            "kind": message.kind,
            "body": message.body,
            "client_msg_id": message.client_msg_id,
            "created_at": message.created_at.isoformat(),
        },
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("two_datacentres")
def test_group_commit__a_batch_of_local_and_replicated_chats__outbox_rows_only_for_the_latter() -> (
    None
):
    # given Amy's group with Bob (both homed here) and her chat with Zed, homed
    # elsewhere (no log here), its remote member worked out by a first send
    amy, bob, zed = make_user(), make_user(), make_user()
    make_friends(amy, bob)
    make_friends(amy, zed)
    homed_elsewhere(zed)
    UserSequence.objects.filter(user=zed).delete()  # his log is kept at his home
    local = group_create(ticket=login_ticket(amy), user_id=amy.pk, name="g", member_ids=[bob.pk])
    chat = direct_conversation_ensure(amy.pk, zed.pk).pk
    send(amy, chat, "first")  # thread path: the conversation and its members go out
    before = OutboxEntry.objects.filter(kind="conversation_event").count()
    with listening() as listener:
        # when one committer writes sends into both, interleaved
        requests = [text(amy if n % 2 else bob, local.pk, f"local {n}") for n in range(4)]
        requests += [text(amy, chat, f"remote {n}") for n in range(3)]
        requests = [requests[i] for i in (0, 4, 1, 5, 2, 6, 3)]
        outcomes = group_commit(requests)
        woken = next(listener.notifies(timeout=30, stop_after=1)).channel
    # then every send is written by the batch
    assert all(isinstance(outcome, Written) for outcome in outcomes), outcomes
    # and the replication log got one entry per send into the chat with Zed, in
    # its order, each what event_replicate writes, and none for the group
    entries = list(OutboxEntry.objects.filter(kind="conversation_event").order_by("id")[before:])
    sent = Message.objects.filter(conversation_id=chat, seq__gt=1).order_by("seq")
    assert [entry.payload for entry in entries] == [as_event_replicate_writes(m) for m in sent]
    assert [m.body["text"] for m in sent] == ["remote 0", "remote 1", "remote 2"]
    assert Conversation.objects.get(pk=local.pk).has_remote_members is False
    # and the logs here got them (Zed's is at his home), and the relay was woken
    assert texts_of(amy, chat) == ["first", "remote 0", "remote 1", "remote 2"]
    assert texts_of(bob, local.pk) == [f"local {n}" for n in range(4)]
    assert not SyncEntry.objects.filter(user=zed, conversation_id=chat).exists()
    assert woken == log.NOTIFY_CHANNEL


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("two_datacentres")
def test_group_commit__a_chat_whose_remote_members_are_unknown__left_to_the_thread_path() -> None:
    # given a 1:1 chat with a friend homed elsewhere, opened without any event
    amy, zed = make_user(), make_user()
    make_friends(amy, zed)
    homed_elsewhere(zed)
    chat = direct_conversation_ensure(amy.pk, zed.pk).pk
    # when Amy's first send reaches the group commit
    (outcome,) = group_commit([text(amy, chat, "hello")])
    # then it writes nothing: the thread path sends the conversation and its
    # members with that first event
    assert isinstance(outcome, Refused)
    assert not Message.objects.filter(conversation_id=chat).exists()
    assert replicated() == []
    send(amy, chat, "hello")
    (outcome,) = group_commit([text(amy, chat, "again")])
    assert isinstance(outcome, Written)
    first, again = replicated()
    assert member_ids(first) == sorted([amy.pk, zed.pk])
    assert (again["conversation"], again["members"]) == ({"id": chat}, None)
    assert [first["message"]["seq"], again["message"]["seq"]] == [1, 2]


def listening() -> psycopg.Connection[Any]:
    """A connection of its own to the test database, listening as the relay does."""
    db = connection.settings_dict
    conninfo = psycopg.conninfo.make_conninfo(
        dbname=db["NAME"], user=db.get("USER") or None, password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None, port=str(db.get("PORT") or "") or None,
    )  # fmt: skip
    listener = psycopg.connect(conninfo, autocommit=True)
    listener.execute(f"LISTEN {log.NOTIFY_CHANNEL}")
    return listener


def texts_of(user: User, conversation: int) -> list[str]:
    """The texts of the text messages in the user's log, in log order."""
    texts = dict(
        Message.objects.filter(conversation_id=conversation, kind="text").values_list("id", "body")
    )
    logged = SyncEntry.objects.filter(user=user, conversation_id=conversation).order_by("seq")
    ids = logged.values_list("message_id", flat=True)
    return [texts[message_id]["text"] for message_id in ids if message_id in texts]


@pytest.mark.usefixtures("two_datacentres")
def test_replay__a_batch_with_a_recall__inserts_what_precedes_it_then_marks_it_recalled() -> None:
    # given a group mastered in zz with Amy in it, and its events in one batch: two
    # messages, the recall of the first, one more message
    amy = make_user()
    x = ELSEWHERE + 7
    first = event(x, 1, amy.pk, "x1", first_of(x, amy.pk, [amy.pk]))
    recall = event(x, 3, amy.pk, "")
    recall["message"].update(kind="recall", body={"message_id": first["message"]["id"]})
    stream = [first, event(x, 2, amy.pk, "x2"), recall, event(x, 4, amy.pk, "x4")]
    entries = [log.ReplayEntry(position, "conversation_event", payload, 0.0)
               for position, payload in enumerate(stream, start=1)]  # fmt: skip
    # when it is replayed here
    replay.batch_apply(origin="zz", entries=entries, pause=lambda seconds: None)
    # then every event is stored and delivered in order, the first message recalled
    stored = Message.objects.filter(conversation_id=x).order_by("seq")
    assert [(m.seq, m.kind, m.recalled_at is not None) for m in stored] == [
        (1, "text", True), (2, "text", False), (3, "recall", False), (4, "text", False),
    ]  # fmt: skip
    assert Conversation.objects.get(pk=x).last_seq == 4
    delivered = SyncEntry.objects.filter(user=amy, conversation_id=x).order_by("seq")
    assert [entry.message_id for entry in delivered] == [m.pk for m in stored]
