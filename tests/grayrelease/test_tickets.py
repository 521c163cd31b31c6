"""Gray release's ticketed reads refuse another user's id (DESIGN.md §5): a view
passing the wrong user cannot learn someone else's flags or devices."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import pytest

from accounts.exceptions import TicketRefused
from accounts.types import VerifiedTicket
from grayrelease import selectors
from tests.factories import login_session, make_feature, make_user

pytestmark = pytest.mark.django_db

WRONG_OWNER_CALLS: dict[str, Callable[[VerifiedTicket, int], Any]] = {
    "selectors.subject_for_ticket": lambda t, bob: selectors.subject_for_ticket(
        ticket=t, user_id=bob
    ),
    "selectors.device_flags": lambda t, bob: selectors.device_flags(ticket=t, user_id=bob),
}


def test_every_ticketed_function__is_covered_by_the_wrong_owner_cases() -> None:
    found = set()
    for module_name in (
        "grayrelease.selectors",
        "grayrelease.evaluation",
        "grayrelease.services.features",
        "grayrelease.services.schedule",
        "grayrelease.services.push",
        "grayrelease.services.changes",
        "grayrelease.services.windows",
        "grayrelease.services.guard",
    ):
        module = importlib.import_module(module_name)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if (
                function.__module__ == module.__name__
                and "ticket" in inspect.signature(function).parameters
            ):
                found.add(f"{module_name.removeprefix('grayrelease.')}.{name}")
    assert found == set(WRONG_OWNER_CALLS)


@pytest.mark.parametrize("name", sorted(WRONG_OWNER_CALLS))
def test_ticketed_read__with_another_users_id__refuses(name: str) -> None:
    make_feature("web.mine", client_visible=True, percentage_bp=10_000)
    alice, bob = make_user(), make_user()
    login_session(bob)
    with pytest.raises(TicketRefused):
        WRONG_OWNER_CALLS[name](login_session(alice).ticket, bob.pk)
