"""The wire encoding of sync pages (PostgreSQL builds the JSON) says exactly what the
Python selector says, entry for entry, for every kind of entry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from messaging.selectors import sync_read, sync_read_wire
from tests.support.synclogs import busy_log

pytestmark = pytest.mark.django_db


@pytest.fixture(name="busy_log")
def busy_log_fixture() -> Any:
    return busy_log()


@pytest.mark.parametrize(("since", "limit"), [(0, 1000), (0, 3), (4, 5), (1000, 10)])
def test_wire_page__equals_the_python_page(busy_log: Any, since: int, limit: int) -> None:
    b = busy_log
    python = sync_read(ticket=b.ticket, user_id=b.user.pk, since=since, limit=limit)
    wire = sync_read_wire(ticket=b.ticket, user_id=b.user.pk, since=since, limit=limit)
    assert json.loads(wire.entries_json) == python.entries
    assert (wire.key, wire.more) == (python.key, python.more)
    assert wire.conversations == python.conversations


def test_wire_page__for_an_old_client__is_the_adapted_python_page(busy_log: Any) -> None:
    b = busy_log
    old = sync_read_wire(
        ticket=b.ticket, user_id=b.user.pk, since=0, limit=100, client_version="1.0.0"
    )
    entries = json.loads(old.entries_json)
    adapted = [e["message"] for e in entries if e["message"] and "adapted_from" in e["message"]]
    assert adapted
    assert all(m["kind"] == "text" for m in adapted)
