"""Following accounts, openids, search and pools, keyword replies and greetings,
and the ticket rule on every users' function of the platform."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.exceptions import TicketRefused
from accounts.models import User
from messaging.exceptions import InvalidContent
from messaging.models import Message
from messaging.services.sending import message_send
from messaging.types import OutgoingContent
from publicplatform import identifiers, selectors
from publicplatform.exceptions import NotAFollower, UnknownMenuButton
from publicplatform.models import Follower, MatchKind, Pool, PoolMember
from publicplatform.services import accounts as account_services
from publicplatform.services import followers, menus, replies
from tests.factories import login_ticket, make_follower, make_official_account, make_user
from wechat_core.errors import InvalidInput

pytestmark = pytest.mark.django_db


def texts(follower: Follower) -> list[str]:
    rows = Message.objects.filter(conversation_id=follower.conversation_id).order_by("seq")
    return [row.body.get("text", "") for row in rows]


def write(user: User, follower: Follower, text: str) -> int:
    ack = message_send(
        ticket=login_ticket(user),
        user_id=user.pk,
        conversation_id=follower.conversation_id,
        client_msg_id=uuid.uuid4().hex,
        content=OutgoingContent(kind="text", text=text),
    )
    return ack.message_id


def test_openid__per_user_and_account__28_chars_stable_on_refollow_distinct_per_account() -> None:
    # given
    alice = make_user()
    first, _ = make_official_account(name="First")
    second, _ = make_official_account(name="Second")
    # when: Alice follows, unfollows and follows again; and follows another account
    before = make_follower(alice, first)
    followers.account_unfollow(ticket=login_ticket(alice), user_id=alice.pk, account_id=first.pk)
    again = make_follower(alice, first)
    other = make_follower(alice, second)
    # then
    assert identifiers.OPENID_RE.fullmatch(before.openid)
    assert before.openid.startswith("o")
    assert again.openid == before.openid
    assert again.conversation_id == before.conversation_id
    assert other.openid != before.openid


def test_service_identity__of_an_account__can_never_log_in() -> None:
    account, _ = make_official_account()
    identity = User.objects.get(pk=account.service_user_id)
    assert not identity.has_usable_password()
    assert identity.phone is None
    assert (identity.email or "").endswith("@service.invalid")


def test_send__after_unfollowing__is_refused_and_nothing_is_pushed() -> None:
    account, _ = make_official_account()
    bob = make_user()
    follower = make_follower(bob, account)
    followers.account_unfollow(ticket=login_ticket(bob), user_id=bob.pk, account_id=account.pk)
    with pytest.raises(NotAFollower):
        write(bob, follower, "hello?")
    assert texts(follower) == []


def test_send__an_image_to_an_account__is_refused_as_text_only() -> None:
    account, _ = make_official_account()
    carol = make_user()
    follower = make_follower(carol, account)
    with pytest.raises(InvalidContent):
        message_send(
            ticket=login_ticket(carol),
            user_id=carol.pk,
            conversation_id=follower.conversation_id,
            client_msg_id="img-1",
            content=OutgoingContent(kind="image", attachment_id=uuid.uuid4()),
        )


@pytest.mark.parametrize(
    ("match", "pattern", "message", "answered"),
    [
        (MatchKind.EXACT, "Hours", "hours", True),
        (MatchKind.EXACT, "Hours", "opening hours", False),
        (MatchKind.CONTAINS, "price", "What is the PRICE?", True),
        (MatchKind.REGEX, r"^order\s+\d+$", "order 123", True),
        (MatchKind.REGEX, r"^order\s+\d+$", "order abc", False),
    ],
)
def test_auto_reply__account_without_server__answers_the_first_matching_rule(
    match: str, pattern: str, message: str, answered: bool
) -> None:
    # given: an account with a rule and no server
    account, _ = make_official_account()
    account_services.autoreply_add(
        account=account, match=match, pattern=pattern, reply="We open at 9."
    )
    dave = make_user()
    follower = make_follower(dave, account)
    message_id = write(dave, follower, message)
    # when: the auto-reply task's service runs
    replies.auto_reply_answer(follower_id=follower.pk, key=f"ppa-{message_id}", text=message)
    replies.auto_reply_answer(
        follower_id=follower.pk, key=f"ppa-{message_id}", text=message
    )  # a retry
    # then: answered once, or not at all
    assert texts(follower) == ([message, "We open at 9."] if answered else [message])


def test_auto_reply__bad_regex__is_refused_on_save() -> None:
    account, _ = make_official_account()
    with pytest.raises(Exception, match="does not compile"):
        account_services.autoreply_add(
            account=account, match=MatchKind.REGEX, pattern="(", reply="x"
        )


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(a)\1", "invalid escape sequence"),  # backreference
        (r"^(?=.*admin).*$", "invalid perl operator"),  # lookahead
        (r"(?<!x)y", "invalid perl operator"),  # lookbehind
        (r"a{5000}", "invalid repetition size"),
    ],
)
def test_auto_reply__regex_needing_backtracking__refused_on_save_saying_why(
    pattern: str, reason: str
) -> None:
    # given / when: a pattern that only a backtracking engine runs
    account, _ = make_official_account()
    with pytest.raises(InvalidInput) as refused:
        account_services.autoreply_add(
            account=account, match=MatchKind.REGEX, pattern=pattern, reply="x"
        )
    # then: the developer reads what is wrong and which syntax is accepted
    assert reason in refused.value.message
    assert "RE2 syntax" in refused.value.message
    assert refused.value.details == {"field": "pattern"}
    assert not account.auto_replies.exists()


def test_auto_reply__catastrophic_regex_on_the_attack_text__the_next_rule_answers_at_once() -> None:
    # given: issue 11's rule (exponential for a backtracking engine) before a plain one
    account, _ = make_official_account()
    account_services.autoreply_add(
        account=account, match=MatchKind.REGEX, pattern="^(a+)+$", reply="all a"
    )
    account_services.autoreply_add(
        account=account, match=MatchKind.CONTAINS, pattern="!", reply="bang"
    )
    # when: the attack text is matched (Python's re: 17.6 s for 27 a's in the issue,
    # 11 s here; each character more doubles it, so 30 a's leave no doubt)
    started = time.monotonic()
    rule = replies.autoreply_match(account_id=account.pk, text="a" * 30 + "!")
    took = time.monotonic() - started
    # then: the second rule answers, in a time no backtracking engine gets near
    assert rule is not None
    assert rule.reply == "bang"
    assert took < 5


def test_greeting__account_without_server__greets_each_new_follow_once() -> None:
    account, _ = make_official_account(greeting="Welcome to the museum!")
    erin = make_user()
    follower = make_follower(erin, account)
    replies.greeting_send(follower_id=follower.pk, followed_at=1)
    replies.greeting_send(follower_id=follower.pk, followed_at=1)
    assert texts(follower) == ["Welcome to the museum!"]


def test_menu_tap__unknown_button__is_refused() -> None:
    account, _ = make_official_account()
    menus.menu_set(
        account=account,
        data={"button": [{"type": "view", "name": "Site", "url": "https://example.com/"}]},
    )
    frank = make_user()
    make_follower(frank, account)
    url = followers.menu_tap(
        ticket=login_ticket(frank),
        user_id=frank.pk,
        account_id=account.pk,
        kind="view",
        value="https://example.com/",
    )
    assert url == "https://example.com/"
    with pytest.raises(UnknownMenuButton):
        followers.menu_tap(
            ticket=login_ticket(frank),
            user_id=frank.pk,
            account_id=account.pk,
            kind="click",
            value="NOPE",
        )


# --- Search and pools (seed 000: szdy → szdy01..szdy10) --------------------------------------


def make_pool(
    name: str, weights: list[int], enabled: list[bool] | None = None
) -> tuple[Pool, list[Any]]:
    pool = Pool.objects.create(name=name)
    members = []
    for index, weight in enumerate(weights):
        account, _ = make_official_account(name=f"{name}{index + 1:02d}")
        on = enabled[index] if enabled else True
        PoolMember.objects.create(pool=pool, account=account, weight=weight, enabled=on)
        members.append(account)
    return pool, members


def test_search__pool_name__returns_one_enabled_member_at_random(settings: Any) -> None:
    # given: szdy with ten members, the fourth disabled
    settings.PUBLICPLATFORM_SEARCHES_PER_MINUTE = 1000
    _, members = make_pool("szdy", [1] * 10, [index != 3 for index in range(10)])
    grace = make_user()
    ticket = login_ticket(grace)
    # when: she searches often
    seen: Counter[str] = Counter()
    for _ in range(300):
        (card,) = selectors.account_search(ticket=ticket, user_id=grace.pk, query="SZDY")
        seen[card.name] += 1
        assert card.pool == "szdy"
    # then: never the disabled one; every other member comes up
    assert "szdy04" not in seen
    assert set(seen) == {m.name for index, m in enumerate(members) if index != 3}


def test_search__name_or_ids__finds_accounts() -> None:
    account, _ = make_official_account(name="City Museum")
    harry = make_user()
    ticket = login_ticket(harry)
    for query in ("museum", account.appid, account.original_id.upper()):
        assert [
            c.id for c in selectors.account_search(ticket=ticket, user_id=harry.pk, query=query)
        ] == [account.pk]


@hypothesis_settings(max_examples=50, deadline=None)
@given(
    weights=st.lists(st.integers(0, 5), min_size=1, max_size=8),
    enabled=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_pool_pick__any_weights__never_picks_disabled_or_zero_weight(
    weights: list[int], enabled: list[bool]
) -> None:
    members = [
        PoolMember(pk=index, weight=w, enabled=enabled[index]) for index, w in enumerate(weights)
    ]
    eligible = {m.pk for m in members if m.enabled and m.weight > 0}
    for _ in range(20):
        chosen = selectors.pool_pick(members)
        assert (chosen is None) == (not eligible)
        assert chosen is None or chosen.pk in eligible


def test_pool_pick__weights__are_followed_in_proportion() -> None:
    members = [PoolMember(pk=1, weight=1), PoolMember(pk=2, weight=3)]
    counts = Counter(selectors.pool_pick(members).pk for _ in range(4000))  # type: ignore[union-attr]
    assert 0.20 < counts[1] / 4000 < 0.30


# --- Tickets: every users' function refuses another user's id -------------------------------

Call = Callable[[Any, User, User, Any], Any]
WRONG_OWNER_CALLS: dict[str, Call] = {
    "followers.account_follow": lambda t, a, b, acc: followers.account_follow(
        ticket=t, user_id=b.pk, account_id=acc.pk
    ),
    "followers.account_unfollow": lambda t, a, b, acc: followers.account_unfollow(
        ticket=t, user_id=b.pk, account_id=acc.pk
    ),
    "followers.menu_tap": lambda t, a, b, acc: followers.menu_tap(
        ticket=t, user_id=b.pk, account_id=acc.pk, kind="click", value="K"
    ),
    "selectors.account_search": lambda t, a, b, acc: selectors.account_search(
        ticket=t, user_id=b.pk, query="x"
    ),
    "selectors.account_card": lambda t, a, b, acc: selectors.account_card(
        ticket=t, user_id=b.pk, account_id=acc.pk
    ),
    "selectors.account_card_for_conversation": lambda t, a, b, acc: (
        selectors.account_card_for_conversation(ticket=t, user_id=b.pk, conversation_id=1)
    ),
    "selectors.followed_accounts": lambda t, a, b, acc: selectors.followed_accounts(
        ticket=t, user_id=b.pk
    ),
}


def test_every_ticketed_function__is_covered_by_the_wrong_owner_cases() -> None:
    import inspect

    found = {
        f"{module.__name__.rsplit('.', 1)[-1]}.{name}"
        for module in (followers, selectors)
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if function.__module__ == module.__name__
        and not name.startswith("_")
        and "ticket" in inspect.signature(function).parameters
    }
    assert found == set(WRONG_OWNER_CALLS)


@pytest.mark.parametrize("name", sorted(WRONG_OWNER_CALLS))
def test_users_functions__called_with_another_users_id__refuse(name: str) -> None:
    alice, bob = make_user(), make_user()
    account, _ = make_official_account()
    with pytest.raises(TicketRefused):
        WRONG_OWNER_CALLS[name](login_ticket(alice), alice, bob, account)
    assert not Follower.objects.filter(user=bob).exists()


def test_service_identity__writes_in_every_follower_chat__but_gets_no_sync_entries() -> None:
    # given: an account greeting two followers, who write to it
    from wechat_core.sync.models import SyncEntry

    account, _ = make_official_account(greeting="Hello")
    people = [make_user(), make_user()]
    for person in people:
        follower = make_follower(person, account)
        replies.greeting_send(follower_id=follower.pk, followed_at=1)
        write(person, follower, "hi")
    # then: each follower has both messages in their log; the identity has nothing
    assert SyncEntry.objects.filter(user_id=account.service_user_id).count() == 0
    for person in people:
        assert SyncEntry.objects.filter(user=person, kind="message").count() == 2


def test_send__to_a_deactivated_account__is_refused() -> None:
    from publicplatform.exceptions import AccountNotFound

    account, _ = make_official_account()
    ivy = make_user()
    follower = make_follower(ivy, account)
    account.is_active = False
    account.save(update_fields=["is_active"])
    with pytest.raises(AccountNotFound):
        write(ivy, follower, "still there?")
