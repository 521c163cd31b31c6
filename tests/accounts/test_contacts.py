"""Contacts: search, friend requests (send, accept, decline, expire), friends, remarks,
deletion and blocking, and the friend limit."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.exceptions import FriendLimitReached
from accounts.models import Block, FriendRequest, FriendRequestStatus, Friendship, User
from accounts.selectors import contact_relation
from accounts.services.contacts import friend_request_accept, friend_requests_expire
from tests.factories import Session, login_session, make_friends, make_user, send_request
from tests.support.concurrency import run_together

pytestmark = pytest.mark.django_db


class Api:
    """A logged-in client, for reading tests as a user's actions."""

    def __init__(self, user: User) -> None:
        self.session: Session = login_session(user)
        self.client = APIClient(headers=self.session.headers)

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(path, body or {}, format="json")

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.client.patch(path, body, format="json")

    def put(self, path: str) -> Any:
        return self.client.put(path)

    def delete(self, path: str) -> Any:
        return self.client.delete(path)

    def ask(self, other: User, greeting: str = "") -> Any:
        return self.post("/api/contacts/requests", {"to_user_id": other.pk, "greeting": greeting})

    def friends(self) -> list[int]:
        return [f["user"]["id"] for f in self.get("/api/contacts/friends").json()["results"]]


# --- Search --------------------------------------------------------------------------


def test_search__by_wechat_id_in_any_case__finds_the_user_and_shows_no_private_fields() -> None:
    bob = make_user(nickname="Bob", wechat_id="bob_the_builder", phone="+8613700000011")
    results = Api(make_user()).get("/api/contacts/search", q="BOB_the_Builder").json()["results"]
    assert [r["id"] for r in results] == [bob.pk]
    assert set(results[0]) == {"id", "wechat_id", "nickname", "avatar_url", "region", "signature"}


@pytest.mark.parametrize("query", ["+8613700000012", "13700000012", "137-0000-0012"])
def test_search__by_phone_in_any_format__finds_the_user(query: str) -> None:
    bob = make_user(phone="+8613700000012", email=None)
    results = Api(make_user()).get("/api/contacts/search", q=query).json()["results"]
    assert [r["id"] for r in results] == [bob.pk]


def test_search__user_who_turned_discovery_off__is_not_found() -> None:
    bob = make_user(wechat_id="hidden_bob", phone="+8613700000013")
    Api(bob).patch(
        "/api/accounts/me", {"discoverable_by_phone": False, "discoverable_by_wechat_id": False}
    )
    searcher = Api(make_user())
    assert searcher.get("/api/contacts/search", q="hidden_bob").json()["results"] == []
    assert searcher.get("/api/contacts/search", q="+8613700000013").json()["results"] == []


def test_search__partial_id__finds_nothing() -> None:
    make_user(wechat_id="bob_the_builder")
    assert Api(make_user()).get("/api/contacts/search", q="bob_the").json()["results"] == []


def test_search__too_many_a_minute__is_429(settings: Any) -> None:
    settings.CONTACT_SEARCHES_PER_MINUTE = 3
    api = Api(make_user())
    codes = [api.get("/api/contacts/search", q=f"someone{n}").status_code for n in range(4)]
    assert codes == [200, 200, 200, 429]


# --- Requests ------------------------------------------------------------------------


def test_request__accepted__makes_both_friends_with_the_accepters_remark() -> None:
    # given
    alice, bob = make_user(nickname="Alice"), make_user(nickname="Bob")
    alice_api, bob_api = Api(alice), Api(bob)
    # when
    sent = alice_api.ask(bob, greeting="Hi, it's Alice from work")
    incoming = bob_api.get("/api/contacts/requests", direction="incoming").json()["results"]
    accepted = bob_api.post(f"/api/contacts/requests/{incoming[0]['id']}/accept", {"remark": "Al"})
    # then
    assert sent.status_code == 201
    assert sent.json()["outcome"] == "pending"
    assert incoming[0]["greeting"] == "Hi, it's Alice from work"
    assert accepted.status_code == 200
    assert accepted.json()["remark"] == "Al"
    assert alice_api.friends() == [bob.pk]
    assert bob_api.friends() == [alice.pk]
    assert contact_relation(
        ticket=alice_api.session.ticket, user_id=alice.pk, other_id=bob.pk
    ).mutual
    status = alice_api.get("/api/contacts/requests", direction="outgoing").json()["results"][0]
    assert status["status"] == "accepted"


def test_request__declined__leaves_no_friendship_and_cannot_be_accepted_later() -> None:
    alice, bob = make_user(), make_user()
    request = send_request(alice, bob)
    bob_api = Api(bob)
    declined = bob_api.post(f"/api/contacts/requests/{request.pk}/decline")
    assert declined.json()["status"] == "declined"
    late = bob_api.post(f"/api/contacts/requests/{request.pk}/accept")
    assert late.status_code == 409
    assert late.json()["code"] == "friend_request_closed"
    assert not Friendship.objects.exists()


def test_request__after_seven_days__expires(settings: Any) -> None:
    # given
    alice, bob = make_user(), make_user()
    request = send_request(alice, bob)
    bob_api = Api(bob)
    # when: seven days and a minute later
    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=1)):
        listed = bob_api.get("/api/contacts/requests", direction="incoming").json()["results"]
        accept = bob_api.post(f"/api/contacts/requests/{request.pk}/accept")
        swept = friend_requests_expire()
    # then
    assert settings.FRIEND_REQUEST_TTL_SECONDS == 7 * 24 * 3600
    assert listed[0]["status"] == "expired"
    assert accept.status_code == 410
    assert accept.json()["code"] == "friend_request_expired"
    assert swept == 1
    request.refresh_from_db()
    assert request.status == FriendRequestStatus.EXPIRED
    assert not Friendship.objects.exists()


def test_request__just_before_seven_days__can_still_be_accepted() -> None:
    alice, bob = make_user(), make_user()
    request = send_request(alice, bob)
    with time_machine.travel(timezone.now() + timedelta(days=6, hours=23)):
        friend_request_accept(
            ticket=login_session(bob).ticket, user_id=bob.pk, request_id=request.pk
        )
    assert Friendship.objects.filter(owner=alice, friend=bob).exists()


def test_request__sent_again_while_pending__refreshes_greeting_and_expiry() -> None:
    alice, bob = make_user(), make_user()
    first = send_request(alice, bob, greeting="hello")
    with time_machine.travel(timezone.now() + timedelta(days=3)):
        second = send_request(alice, bob, greeting="hello again")
    assert second.pk == first.pk
    assert FriendRequest.objects.filter(from_user=alice, to_user=bob).count() == 1
    second.refresh_from_db()
    assert second.greeting == "hello again"
    assert second.expires_at - first.expires_at >= timedelta(days=3) - timedelta(seconds=5)


def test_request__when_they_already_asked_me__makes_us_friends_at_once() -> None:
    alice, bob = make_user(), make_user()
    send_request(alice, bob)
    response = Api(bob).ask(alice)
    assert response.json()["outcome"] == "friends"
    assert Friendship.objects.filter(owner=alice, friend=bob).exists()
    assert Friendship.objects.filter(owner=bob, friend=alice).exists()
    assert not FriendRequest.objects.filter(status=FriendRequestStatus.PENDING).exists()


def test_request__to_an_existing_friend__is_409_already_friends() -> None:
    alice, bob = make_user(), make_user()
    make_friends(alice, bob)
    assert Api(alice).ask(bob).json()["code"] == "already_friends"


def test_request__to_myself__is_400_and_to_nobody_is_404() -> None:
    alice = make_user()
    api = Api(alice)
    assert api.ask(alice).json()["code"] == "cannot_target_self"
    missing = api.post("/api/contacts/requests", {"to_user_id": 10**15})
    assert (missing.status_code, missing.json()["code"]) == (404, "user_not_found")


def test_request__greeting_over_the_limit__is_400(settings: Any) -> None:
    settings.FRIEND_REQUEST_GREETING_MAX_LENGTH = 10
    alice, bob = make_user(), make_user()
    response = Api(alice).ask(bob, greeting="x" * 11)
    assert response.status_code == 400
    assert "greeting" in response.json()["details"]["fields"]


def test_request__accepting_someone_elses_request__is_404() -> None:
    alice, bob, mallory = make_user(), make_user(), make_user()
    request = send_request(alice, bob)
    response = Api(mallory).post(f"/api/contacts/requests/{request.pk}/accept")
    assert (response.status_code, response.json()["code"]) == (404, "friend_request_not_found")


def test_request__more_than_the_daily_limit__is_429(settings: Any) -> None:
    settings.FRIEND_REQUESTS_PER_DAY = 2
    alice = make_user()
    api = Api(alice)
    codes = [api.ask(make_user()).status_code for _ in range(3)]
    assert codes == [201, 201, 429]


def test_request__refused_calls_count_toward_the_daily_limit(settings: Any) -> None:
    # given: someone probing ids with friend requests, most of them refused
    settings.FRIEND_REQUESTS_PER_DAY = 3
    api = Api(make_user())
    # when
    codes = [api.post("/api/contacts/requests", {"to_user_id": 10**9 + n}).status_code
             for n in range(3)]  # fmt: skip
    # then: the refusals used the day's allowance
    assert codes == [404, 404, 404]
    assert api.ask(make_user()).status_code == 429


# --- Profiles in contact answers: only what the caller may see -------------------------------

PROFILE_FIELDS = {"id", "wechat_id", "nickname", "avatar_url", "region", "signature"}


def test_block__any_id__answers_nothing_but_the_id_of_a_stranger() -> None:
    # given: users who never had anything to do with Mallory, one of them hidden
    hidden = make_user(nickname="Hidden Hannah", wechat_id="hannah_hides")
    hidden.discoverable_by_phone = hidden.discoverable_by_wechat_id = False
    hidden.save(update_fields=["discoverable_by_phone", "discoverable_by_wechat_id"])
    others = [make_user(nickname=f"Stranger {n}") for n in range(3)]
    mallory = Api(make_user())
    # when: Mallory walks through their ids with blocks
    answers = [mallory.put(f"/api/contacts/blocks/{u.pk}") for u in (hidden, *others)]
    listed = mallory.get("/api/contacts/blocks").json()["results"]
    # then: every answer and the block list name them by id only
    assert [a.status_code for a in answers] == [200] * 4
    assert [a.json()["user"] for a in answers] == [{"id": u.pk} for u in (hidden, *others)]
    assert sorted(b["user"]["id"] for b in listed) == sorted(u.pk for u in (hidden, *others))
    assert all(b["user"].keys() == {"id"} for b in listed)
    body = str([a.json() for a in answers]) + str(listed)
    assert "Hidden Hannah" not in body
    assert "hannah_hides" not in body


def test_block__someone_i_know__still_shows_their_profile() -> None:
    # given: a friend, and a stranger who asked Alice to be friends
    alice, bob, carol = make_user(), make_user(nickname="Bob"), make_user(nickname="Carol")
    make_friends(alice, bob)
    send_request(carol, alice)
    api = Api(alice)
    # when
    answers = [api.put(f"/api/contacts/blocks/{u.pk}").json() for u in (bob, carol)]
    # then: they made themselves known to Alice, so their profiles show
    assert [a["user"]["nickname"] for a in answers] == ["Bob", "Carol"]
    assert answers[0]["user"].keys() == PROFILE_FIELDS


def test_request__to_a_stranger__shows_their_profile_only_once_they_answer() -> None:
    # given: Mallory asks a user she has no relation with, by id
    hidden = make_user(nickname="Hidden Hannah")
    mallory_user = make_user(nickname="Mallory")
    mallory = Api(mallory_user)
    # when
    sent = mallory.ask(hidden)
    outgoing = mallory.get("/api/contacts/requests", direction="outgoing").json()["results"]
    # then: the answer and her outgoing list name the target by id only
    assert sent.status_code == 201
    assert sent.json()["request"]["to_user"] == {"id": hidden.pk}
    assert outgoing[0]["to_user"] == {"id": hidden.pk}
    assert outgoing[0]["from_user"]["nickname"] == "Mallory"
    # and the target sees who asked (the request is Mallory's own act)
    incoming = Api(hidden).get("/api/contacts/requests", direction="incoming").json()["results"]
    assert incoming[0]["from_user"]["nickname"] == "Mallory"
    # when: the target accepts, they are friends and the profile shows
    request_id = sent.json()["request"]["id"]
    assert Api(hidden).post(f"/api/contacts/requests/{request_id}/accept").status_code == 200
    outgoing = mallory.get("/api/contacts/requests", direction="outgoing").json()["results"]
    assert outgoing[0]["to_user"]["nickname"] == "Hidden Hannah"


def test_block__more_than_the_daily_limit__is_429_and_every_call_counts(settings: Any) -> None:
    # given
    settings.BLOCKS_PER_DAY = 3
    api = Api(make_user())
    # when: two blocks of unknown ids, one real block, then one more
    codes = [api.put(f"/api/contacts/blocks/{10**9 + n}").status_code for n in range(2)]
    codes += [api.put(f"/api/contacts/blocks/{make_user().pk}").status_code for _ in range(2)]
    # then
    assert codes == [404, 404, 200, 429]
    refused = api.put(f"/api/contacts/blocks/{make_user().pk}")
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0


# --- Friends, remarks, deletion ------------------------------------------------------------


def test_remark__set_and_shown_only_on_my_side() -> None:
    alice, bob = make_user(), make_user()
    make_friends(alice, bob)
    response = Api(alice).patch(f"/api/contacts/friends/{bob.pk}", {"remark": "Bobby (gym)"})
    assert response.json()["remark"] == "Bobby (gym)"
    assert Friendship.objects.get(owner=bob, friend=alice).remark == ""


def test_remark__too_long_or_with_control_characters__is_400(settings: Any) -> None:
    settings.FRIEND_REMARK_MAX_LENGTH = 8
    alice, bob = make_user(), make_user()
    make_friends(alice, bob)
    api = Api(alice)
    assert api.patch(f"/api/contacts/friends/{bob.pk}", {"remark": "x" * 9}).status_code == 400
    assert api.patch(f"/api/contacts/friends/{bob.pk}", {"remark": "a\x00b"}).status_code == 400


def test_delete__removes_only_my_side_and_ends_mutual_contact() -> None:
    alice, bob = make_user(), make_user()
    make_friends(alice, bob)
    alice_api = Api(alice)
    assert alice_api.delete(f"/api/contacts/friends/{bob.pk}").status_code == 204
    assert alice_api.friends() == []
    assert Api(bob).friends() == [alice.pk]
    assert not contact_relation(
        ticket=alice_api.session.ticket, user_id=alice.pk, other_id=bob.pk
    ).mutual
    again = alice_api.delete(f"/api/contacts/friends/{bob.pk}")
    assert (again.status_code, again.json()["code"]) == (404, "not_a_friend")


def test_delete__then_asking_again_while_they_still_have_me__restores_at_once() -> None:
    alice, bob = make_user(), make_user()
    make_friends(alice, bob)
    alice_api = Api(alice)
    alice_api.delete(f"/api/contacts/friends/{bob.pk}")
    response = alice_api.ask(bob)
    assert response.json()["outcome"] == "friends"
    assert alice_api.friends() == [bob.pk]


def test_friend_list__is_paginated(settings: Any) -> None:
    settings.API_PAGE_SIZE = 2
    alice = make_user()
    for _ in range(3):
        make_friends(alice, make_user())
    api = Api(alice)
    first = api.get("/api/contacts/friends").json()
    second = api.get("/api/contacts/friends", page=2).json()
    assert first["count"] == 3
    assert len(first["results"]) == 2
    assert first["next"] is not None
    assert len(second["results"]) == 1


# --- Blocking -----------------------------------------------------------------------------


def test_block__blocked_user_cannot_send_requests() -> None:
    alice, mallory = make_user(), make_user()
    assert Api(alice).put(f"/api/contacts/blocks/{mallory.pk}").status_code == 200
    response = Api(mallory).ask(alice)
    assert (response.status_code, response.json()["code"]) == (403, "blocked")
    assert not FriendRequest.objects.filter(from_user=mallory).exists()


def test_block__declines_pending_requests_both_ways_and_ends_mutual_contact() -> None:
    alice, mallory = make_user(), make_user()
    request = send_request(mallory, alice)
    alice_api = Api(alice)
    alice_api.put(f"/api/contacts/blocks/{mallory.pk}")
    request.refresh_from_db()
    assert request.status == FriendRequestStatus.DECLINED
    assert alice_api.get("/api/contacts/blocks").json()["results"][0]["user"]["id"] == mallory.pk


def test_block__between_friends__keeps_contacts_but_is_not_mutual_until_unblocked() -> None:
    alice, bob = make_user(), make_user()
    make_friends(alice, bob)
    alice_api = Api(alice)
    alice_api.put(f"/api/contacts/blocks/{bob.pk}")
    ticket = alice_api.session.ticket
    assert not contact_relation(ticket=ticket, user_id=alice.pk, other_id=bob.pk).mutual
    assert alice_api.friends() == [bob.pk]
    assert alice_api.delete(f"/api/contacts/blocks/{bob.pk}").status_code == 204
    assert contact_relation(ticket=ticket, user_id=alice.pk, other_id=bob.pk).mutual


def test_block__asking_someone_i_blocked__is_409_until_i_unblock() -> None:
    alice, bob = make_user(), make_user()
    alice_api = Api(alice)
    alice_api.put(f"/api/contacts/blocks/{bob.pk}")
    assert alice_api.ask(bob).json()["code"] == "you_blocked_user"
    alice_api.delete(f"/api/contacts/blocks/{bob.pk}")
    assert alice_api.ask(bob).status_code == 201


def test_unblock__someone_not_blocked__is_404_not_blocked() -> None:
    alice, bob = make_user(), make_user()
    response = Api(alice).delete(f"/api/contacts/blocks/{bob.pk}")
    assert (response.status_code, response.json()["code"]) == (404, "not_blocked")
    assert not Block.objects.exists()


# --- The friend limit -----------------------------------------------------------------------


def test_friend_limit__is_5000_by_default(settings: Any) -> None:
    assert settings.FRIEND_LIMIT == 5000


def test_friend_limit__accepting_past_it__is_409_and_names_who_is_full(settings: Any) -> None:
    settings.FRIEND_LIMIT = 2
    alice = make_user()
    make_friends(alice, make_user())
    make_friends(alice, make_user())
    newcomer = make_user()
    request = send_request(newcomer, alice)
    response = Api(alice).post(f"/api/contacts/requests/{request.pk}/accept")
    assert (response.status_code, response.json()["code"]) == (409, "friend_limit_reached")
    assert response.json()["details"]["user_id"] == alice.pk
    assert Friendship.objects.filter(owner=alice).count() == 2


@pytest.mark.django_db(transaction=True)
def test_friend_limit__concurrent_accepts__never_exceed_it(settings: Any) -> None:
    # given: Alice may have 3 friends and has 8 pending requests
    settings.FRIEND_LIMIT = 3
    alice = make_user()
    requests = [send_request(make_user(), alice) for _ in range(8)]
    ticket = login_session(alice).ticket
    # when: she accepts all of them at once (eight devices, say)
    accept = partial(friend_request_accept, ticket=ticket, user_id=alice.pk)
    outcomes = run_together([partial(accept, request_id=r.pk) for r in requests])
    # then: exactly three succeed, the rest are refused by the limit
    assert sum(o.error is None for o in outcomes) == 3
    assert all(isinstance(o.error, FriendLimitReached) for o in outcomes if o.error is not None)
    assert Friendship.objects.filter(owner=alice).count() == 3
    assert Friendship.objects.filter(friend=alice).count() == 3
