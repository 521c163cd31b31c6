"""Group commit (messaging/store/groupcommit.py): sends written together keep every
guarantee of a send written alone.

Given people, 1:1 chats and a group on PostgreSQL, when any sequence of sends
(members and non-members, client_msg_ids repeated within a batch, across batches
and across conversations) goes through one GroupCommitter, batched as it
pleases, then: each send's outcome is what a send alone would give (new,
duplicate of the first with its id, or refused for the thread path), a refused
send writes nothing and fails none of the others, every conversation numbers its
new messages without a gap in submission order, and every recipient's log gets
one entry per message, without a gap, in the same order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.models import Conversation, Membership, Message
from messaging.services.conversations import direct_open, group_create
from messaging.store.groupcommit import (
    GroupCommitter,
    Outcome,
    Refused,
    SendRequest,
    Written,
)
from tests.factories import befriend_all, login_session, make_user
from wechat_core.sync.models import SyncEntry, UserSequence

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True)
class World:
    users: list[int]  # alice, bob, carol (friends), dave (a stranger)
    conversations: list[int]  # alice-bob, alice-carol, group of alice, bob, carol


@pytest.fixture
def world() -> World:
    people = [make_user(nickname=name) for name in ("Alice", "Bob", "Carol", "Dave")]
    alice, bob, carol, _dave = people
    befriend_all(alice, [bob, carol])
    befriend_all(bob, [carol])
    session = login_session(alice)
    ids = [user.pk for user in people]
    chats = [
        direct_open(ticket=session.ticket, user_id=alice.pk, peer_id=peer.pk).pk
        for peer in (bob, carol)
    ]
    group = group_create(
        ticket=session.ticket, user_id=alice.pk, name="G", member_ids=[bob.pk, carol.pk]
    ).pk
    return World(ids, [*chats, group])


def _commit_all(requests: list[SendRequest], waves: list[int]) -> list[Outcome]:
    """Submit the requests in waves (each wave all at once, so that it batches),
    with records of what each batch held."""

    async def main() -> list[Outcome]:
        committer = GroupCommitter(on_committed=lambda written: None)
        outcomes: list[Outcome] = []
        try:
            start = 0
            for size in waves:
                wave = requests[start : start + size]
                start += size
                outcomes += await asyncio.gather(*(committer.submit(r) for r in wave))
        finally:
            await committer.aclose()
        return outcomes

    return asyncio.run(main())


def _members(conversation_id: int) -> set[int]:
    return set(
        Membership.objects.filter(
            conversation_id=conversation_id, left_seq__isnull=True
        ).values_list("user_id", flat=True)
    )


sends = st.lists(
    st.tuples(
        st.integers(0, 3),  # sender: alice, bob, carol, dave
        st.integers(0, 2),  # conversation
        st.sampled_from(["a", "b", "c", "d", "e"]),  # a client_msg_id, often repeated
    ),
    min_size=1,
    max_size=24,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sends=sends, cuts=st.lists(st.integers(1, 8), min_size=1, max_size=6))
def test_batches__any_sends_in_any_batches__keep_every_send_alone_guarantee(
    world: World, sends: list[tuple[int, int, str]], cuts: list[int]
) -> None:
    # Given: a fresh namespace of client ids for this example (the database
    # outlives examples), and the state before.
    prefix = uuid.uuid4().hex[:8]
    requests = [
        SendRequest(
            world.users[sender],
            world.conversations[conversation],
            f"{prefix}-{key}",
            "text",
            {"text": f"{sender} {conversation} {key}"},
        )
        for sender, conversation, key in sends
    ]
    waves: list[int] = []
    left = len(requests)
    for cut in cuts * len(requests):
        if left == 0:
            break
        waves.append(min(cut, left))
        left -= waves[-1]
    last_seq_before = dict(
        Conversation.objects.filter(pk__in=world.conversations).values_list("id", "last_seq")
    )
    user_seq_before = dict(
        UserSequence.objects.filter(user_id__in=world.users).values_list("user_id", "last_seq")
    )
    members = {conversation: _members(conversation) for conversation in world.conversations}

    # When
    outcomes = _commit_all(requests, waves)

    # Then: each outcome is what the send alone would give.
    first: dict[tuple[int, str], tuple[int, Written]] = {}
    new: list[tuple[SendRequest, Written]] = []
    for request, outcome in zip(requests, outcomes, strict=True):
        key = (request.sender_id, request.client_msg_id)
        if key in first:
            conversation, earlier = first[key]
            if conversation != request.conversation_id:
                assert isinstance(outcome, Refused)  # client_msg_id reused elsewhere
            else:
                assert isinstance(outcome, Written)
                assert outcome.duplicate
                assert (outcome.message_id, outcome.seq) == (earlier.message_id, earlier.seq)
        elif request.sender_id not in members[request.conversation_id]:
            assert isinstance(outcome, Refused)
        else:
            assert isinstance(outcome, Written)
            assert not outcome.duplicate
            first[key] = (request.conversation_id, outcome)
            new.append((request, outcome))

    # Every conversation numbered its new messages without a gap, in submission order.
    by_conversation: dict[int, list[Written]] = defaultdict(list)
    for request, written in new:
        by_conversation[request.conversation_id].append(written)
    for conversation in world.conversations:
        seqs = [written.seq for written in by_conversation[conversation]]
        start = last_seq_before[conversation] + 1
        assert seqs == list(range(start, start + len(seqs)))
        assert Conversation.objects.get(pk=conversation).last_seq == start + len(seqs) - 1
    # Nothing refused was written.
    assert Message.objects.filter(client_msg_id__startswith=prefix).count() == len(new)

    # Every recipient's log got one entry per message, without a gap, in order.
    for user in world.users:
        expected = [
            written.message_id
            for request, written in new
            if user in members[request.conversation_id]
        ]
        rows = list(
            SyncEntry.objects.filter(user_id=user, seq__gt=user_seq_before[user])
            .order_by("seq")
            .values_list("seq", "message_id")
        )
        assert [message for _, message in rows] == expected
        start = user_seq_before[user] + 1
        assert [seq for seq, _ in rows] == list(range(start, start + len(rows)))
        newest = [w.last_seqs[user] for _, w in new if user in w.last_seqs]
        assert newest == [seq for seq, _ in rows]


def test_batch__that_fails_whole__writes_nothing_and_refuses_every_send(world: World) -> None:
    # Given: bob has lost his sequence row, so a send into his chat cannot be delivered.
    alice, bob, carol, _ = world.users
    chat_bob, chat_carol, _ = world.conversations
    UserSequence.objects.filter(user_id=bob).delete()
    before = Message.objects.count()

    # When: that send shares a batch with a good one.
    outcomes = _commit_all(
        [
            SendRequest(alice, chat_carol, "good-1", "text", {"text": "hi carol"}),
            SendRequest(alice, chat_bob, "bad-1", "text", {"text": "hi bob"}),
        ],
        [2],
    )

    # Then: the batch rolled back whole; both go to the thread path, which
    # retries the good one alone and stops loudly on the bad one.
    assert all(isinstance(outcome, Refused) for outcome in outcomes)
    assert Message.objects.count() == before

    # And the committer goes on with the next batch on a fresh connection.
    again = _commit_all(
        [SendRequest(alice, chat_carol, "good-1", "text", {"text": "hi carol"})], [1]
    )
    assert isinstance(again[0], Written)
    assert not again[0].duplicate
    assert carol in again[0].last_seqs


def test_sends__arriving_together__are_committed_in_one_batch(world: World) -> None:
    # Given: eight sends into the group arriving at once.
    alice, bob, carol, _ = world.users
    group = world.conversations[2]
    requests = [
        SendRequest([alice, bob, carol][n % 3], group, f"together-{n}", "text", {"text": "x"})
        for n in range(8)
    ]
    batches: list[list[int]] = []

    async def main() -> list[Outcome]:
        committer = GroupCommitter(
            on_committed=lambda written: batches.append([w.seq for w in written])
        )
        try:
            return await asyncio.gather(*(committer.submit(r) for r in requests))
        finally:
            await committer.aclose()

    # When
    outcomes = asyncio.run(main())

    # Then: one commit wrote them all, numbered in the order they arrived.
    assert len(batches) == 1
    assert batches[0] == [o.seq for o in outcomes if isinstance(o, Written)]
    assert batches[0] == sorted(batches[0])
    assert len(batches[0]) == 8
