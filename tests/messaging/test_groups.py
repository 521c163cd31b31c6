"""Groups: create, invite, remove, leave, rename, announcement, roles, the 500 limit,
and how old clients are shown groups."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from messaging.exceptions import (
    AlreadyMember,
    ConversationNotFound,
    GroupFull,
    NotAllowed,
    NotFriends,
)
from messaging.models import Conversation, MemberRole, Membership
from messaging.selectors import conversation_get, sync_read
from messaging.services.conversations import (
    group_create,
    group_invite,
    group_leave,
    group_remove,
    group_set_admin,
    group_update,
)
from messaging.services.sending import message_send
from messaging.types import OutgoingContent
from tests.factories import Session, login_session, make_friends, make_user

pytestmark = pytest.mark.django_db


def say(session: Session, group: int, words: str) -> None:
    message_send(
        ticket=session.ticket, user_id=session.user.pk, conversation_id=group,
        client_msg_id=uuid.uuid4().hex, content=OutgoingContent("text", words),
    )  # fmt: skip


def events(session: Session, group: int) -> list[tuple[str, Any]]:
    """(kind, text-or-event) of the group's messages in the session user's log."""
    page = sync_read(ticket=session.ticket, user_id=session.user.pk, since=0, limit=1000)
    out = []
    for entry in page.entries:
        message = entry.get("message")
        if message and message["conversation"] == group:
            body = message["body"]
            label = body.get("event") if message["kind"] == "system" else body.get("text")
            out.append((message["kind"], label))
    return out


@pytest.fixture
def team() -> dict[str, Any]:
    """Olivia (owner) with friends Alice and Bob in group Team; Carol is Olivia's friend too."""
    olivia, alice, bob, carol = (make_user(nickname=n) for n in ("Olivia", "Alice", "Bob", "Carol"))
    for friend in (alice, bob, carol):
        make_friends(olivia, friend)
    sessions = {name: login_session(u) for name, u in
                (("olivia", olivia), ("alice", alice), ("bob", bob), ("carol", carol))}  # fmt: skip
    group = group_create(
        ticket=sessions["olivia"].ticket,
        user_id=olivia.pk,
        name="Team",
        member_ids=[alice.pk, bob.pk],
    )
    return {"group": group.pk, **sessions}


def test_create__everyone_gets_the_created_notice_and_roles_are_set(team: dict[str, Any]) -> None:
    group = team["group"]
    for name in ("olivia", "alice", "bob"):
        assert events(team[name], group) == [("system", "created")]
    _, membership, members = conversation_get(
        ticket=team["olivia"].ticket, user_id=team["olivia"].user.pk, conversation_id=group
    )
    assert membership.role == MemberRole.OWNER
    assert len(members) == 3


def test_create__with_a_non_friend__is_refused() -> None:
    olivia, stranger = make_user(), make_user()
    session = login_session(olivia)
    with pytest.raises(NotFriends):
        group_create(ticket=session.ticket, user_id=olivia.pk, name="X", member_ids=[stranger.pk])


def test_messages__every_member_sees_them_in_one_order(team: dict[str, Any]) -> None:
    group = team["group"]
    say(team["alice"], group, "a1")
    say(team["bob"], group, "b1")
    say(team["olivia"], group, "o1")
    say(team["alice"], group, "a2")
    expected = [
        ("system", "created"),
        ("text", "a1"),
        ("text", "b1"),
        ("text", "o1"),
        ("text", "a2"),
    ]
    for name in ("olivia", "alice", "bob"):
        assert events(team[name], group) == expected


def test_invite__newcomer_sees_from_the_joined_notice_on(team: dict[str, Any]) -> None:
    group = team["group"]
    say(team["alice"], group, "before Carol")
    group_invite(
        ticket=team["olivia"].ticket, user_id=team["olivia"].user.pk, conversation_id=group,
        member_ids=[team["carol"].user.pk],
    )  # fmt: skip
    say(team["bob"], group, "welcome")
    assert events(team["carol"], group) == [("system", "joined"), ("text", "welcome")]
    assert ("text", "before Carol") in events(team["alice"], group)


def test_invite__someone_already_in__is_refused(team: dict[str, Any]) -> None:
    with pytest.raises(AlreadyMember):
        group_invite(
            ticket=team["olivia"].ticket, user_id=team["olivia"].user.pk,
            conversation_id=team["group"], member_ids=[team["alice"].user.pk],
        )  # fmt: skip


def test_remove__by_owner__the_removed_member_gets_the_notice_and_nothing_after(
    team: dict[str, Any],
) -> None:
    group, bob = team["group"], team["bob"]
    group_remove(
        ticket=team["olivia"].ticket, user_id=team["olivia"].user.pk, conversation_id=group,
        member_id=bob.user.pk,
    )  # fmt: skip
    say(team["alice"], group, "after Bob left")
    assert events(bob, group) == [("system", "created"), ("system", "removed")]
    with pytest.raises(ConversationNotFound):
        say(bob, group, "let me back")


def test_remove__by_an_ordinary_member__is_refused(team: dict[str, Any]) -> None:
    with pytest.raises(NotAllowed):
        group_remove(
            ticket=team["alice"].ticket, user_id=team["alice"].user.pk,
            conversation_id=team["group"], member_id=team["bob"].user.pk,
        )  # fmt: skip


def test_admin__may_remove_members_but_not_the_owner(team: dict[str, Any]) -> None:
    group, olivia, alice = team["group"], team["olivia"], team["alice"]
    group_set_admin(
        ticket=olivia.ticket, user_id=olivia.user.pk, conversation_id=group,
        member_id=alice.user.pk, admin=True,
    )  # fmt: skip
    group_remove(ticket=alice.ticket, user_id=alice.user.pk, conversation_id=group,
                 member_id=team["bob"].user.pk)  # fmt: skip
    with pytest.raises(NotAllowed):
        group_remove(ticket=alice.ticket, user_id=alice.user.pk, conversation_id=group,
                     member_id=olivia.user.pk)  # fmt: skip


def test_leave__by_the_owner__hands_the_group_to_an_admin_first(team: dict[str, Any]) -> None:
    group, olivia, bob = team["group"], team["olivia"], team["bob"]
    group_set_admin(
        ticket=olivia.ticket, user_id=olivia.user.pk, conversation_id=group,
        member_id=bob.user.pk, admin=True,
    )  # fmt: skip
    group_leave(ticket=olivia.ticket, user_id=olivia.user.pk, conversation_id=group)
    assert Conversation.objects.get(pk=group).owner_id == bob.user.pk
    assert Membership.objects.get(conversation_id=group, user=bob.user).role == MemberRole.OWNER
    assert Conversation.objects.get(pk=group).member_count == 2


def test_rename_and_announce__by_admins_only(team: dict[str, Any]) -> None:
    group, olivia, alice = team["group"], team["olivia"], team["alice"]
    group_update(ticket=olivia.ticket, user_id=olivia.user.pk, conversation_id=group,
                 name="Team Rocket", announcement="Standup at 10")  # fmt: skip
    with pytest.raises(NotAllowed):
        group_update(ticket=alice.ticket, user_id=alice.user.pk, conversation_id=group, name="Mine")
    assert events(alice, group)[-2:] == [("system", "renamed"), ("system", "announcement")]
    assert Conversation.objects.get(pk=group).name == "Team Rocket"


def test_limit__a_group_holds_at_most_the_configured_members(settings: Any) -> None:
    settings.MESSAGING_GROUP_MAX_MEMBERS = 3
    owner = make_user()
    friends = [make_user() for _ in range(3)]
    for friend in friends:
        make_friends(owner, friend)
    session = login_session(owner)
    group = group_create(
        ticket=session.ticket,
        user_id=owner.pk,
        name="Small",
        member_ids=[f.pk for f in friends[:2]],
    )
    with pytest.raises(GroupFull):
        group_invite(ticket=session.ticket, user_id=owner.pk, conversation_id=group.pk,
                     member_ids=[friends[2].pk])  # fmt: skip


def test_limit__is_500_by_default(settings: Any) -> None:
    assert settings.MESSAGING_GROUP_MAX_MEMBERS == 500


# --- Old clients ---------------------------------------------------------------------------


def test_old_client__sees_a_group_as_a_chat_with_the_group_and_its_events_as_text(
    team: dict[str, Any],
) -> None:
    # given: Bob also uses an old client, from before groups existed
    group = team["group"]
    old = login_session(team["bob"].user, client_version="1.2.0")
    say(team["alice"], group, "lunch?")
    # when: the old device and a current one sync
    old_page = sync_read(ticket=old.ticket, user_id=old.user.pk, since=0, limit=100)
    new_page = sync_read(ticket=team["bob"].ticket, user_id=old.user.pk, since=0, limit=100)
    # then: the old one gets text it can show, in a 1:1-shaped conversation
    old_texts = [
        e["message"]["body"]["text"]
        for e in old_page.entries
        if e["conversation"] == group and e["message"] is not None
    ]
    assert old_texts == ["Olivia created the group \u201cTeam\u201d", "Alice: lunch?"]
    assert old_page.conversations[group]["kind"] == "direct"
    assert old_page.conversations[group]["name"] == "[Group] Team"
    # and the current one gets the real group
    assert new_page.conversations[group]["kind"] == "group"
    assert [
        e["message"]["kind"]
        for e in new_page.entries
        if e["conversation"] == group and e["message"] is not None
    ] == [
        "system",
        "text",
    ]


def test_old_client__can_answer_into_the_group(team: dict[str, Any]) -> None:
    group = team["group"]
    old = login_session(team["bob"].user, client_version="1.2.0")
    say(old, group, "from my old phone")
    assert ("text", "from my old phone") in events(team["alice"], group)
