"""The replication log's rules, in-process (issue 17): entries written only with
several data centres, applied once each, in order per origin; the relay, in a
thread against RabbitMQ, when the broker goes silent. The relay and the replay
between two data centres are tested in test_replication_live.py."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.test import Client, override_settings
from kombu import Connection

from accounts.models import User
from tests.factories import make_user
from tests.support.datacentres import BROKER_URL, broker_through, queues_delete
from tests.support.links import Link
from tests.support.waiting import eventually
from wechat_core.models import OutboxEntry, ParkedEntry, ReplayError, ReplayPosition
from wechat_core.replication import log, replay
from wechat_core.replication.broker import outbox_number, queue_for, queue_name, relay_run
from wechat_core.replication.selectors import replication_status

pytestmark = pytest.mark.django_db

TWO_DCS = {"sh": {"index": 0, "endpoints": []}, "hk": {"index": 1, "endpoints": []}}
applied: list[tuple[str, dict[str, Any]]] = []


@pytest.fixture
def recorder() -> None:
    applied.clear()

    def record(payload: dict[str, Any], origin: str) -> None:
        applied.append((origin, payload))  # every call, even one rolled back
        # and the effect, in the replay's transaction: gone if it rolls back
        OutboxEntry.objects.create(kind="test.effect", payload=payload)

    log.replay_handler_register("test.record", record)

    def fail(payload: dict[str, Any], origin: str) -> None:
        raise RuntimeError("cannot apply")

    log.replay_handler_register("test.fail", fail)


def apply(position: int, kind: str = "test.record", **payload: Any) -> str:
    return log.entry_apply(
        origin="hk", position=position, kind=kind, payload=payload, written_at=0.0
    )


def test_replicate__with_one_datacentre__writes_nothing() -> None:
    log.replicate("test.record", {"n": 1})
    assert not OutboxEntry.objects.exists()


@transaction.atomic
def write_then_fail() -> None:
    log.replicate("test.record", {"n": 1})
    raise RuntimeError("the write failed")


def test_replicate__with_several__writes_in_the_callers_transaction() -> None:
    with override_settings(DATACENTERS=TWO_DCS, MULTI_DATACENTER=True):
        with pytest.raises(RuntimeError):
            write_then_fail()
        assert not OutboxEntry.objects.exists()  # rolled back with it
        log.replicate("test.record", {"n": 2})
    assert list(OutboxEntry.objects.values_list("payload", flat=True)) == [{"n": 2}]


def test_outbox_number__gives_contiguous_positions_and_keeps_them_until_shipped() -> None:
    with override_settings(DATACENTERS=TWO_DCS, MULTI_DATACENTER=True):
        for n in range(3):
            log.replicate("test.record", {"n": n})
    first = outbox_number(2)
    again = outbox_number(10)  # not marked shipped: the same batch, same positions
    assert [entry.position for entry in first] == [1, 2]
    assert [entry.position for entry in again] == [1, 2]
    OutboxEntry.objects.filter(position__in=[1, 2]).update(shipped_at="2026-01-01T00:00Z")
    assert [entry.position for entry in outbox_number(10)] == [3]


@pytest.mark.usefixtures("recorder")
def test_entry_apply__once_per_position_in_order() -> None:
    assert apply(1, n=1) == "applied"
    assert apply(1, n=1) == "duplicate"  # redelivered
    assert apply(2, n=2) == "applied"
    with pytest.raises(log.ReplayGap):
        apply(4, n=4)  # 3 was lost: never skipped over
    assert applied == [("hk", {"n": 1}), ("hk", {"n": 2})]
    assert ReplayPosition.objects.get(origin="hk").position == 2


@pytest.mark.usefixtures("recorder")
def test_entry_apply__a_failing_entry_leaves_the_position_for_the_retry() -> None:
    apply(1, n=1)
    with pytest.raises(RuntimeError):
        apply(2, kind="test.fail")
    assert ReplayPosition.objects.get(origin="hk").position == 1
    assert apply(2, n=2) == "applied"  # the retry (here: a fixed handler)


# --- Batches ----------------------------------------------------------------------------------


def entries(*specs: tuple[int, str]) -> list[log.ReplayEntry]:
    return [log.ReplayEntry(position, kind, {"n": position}, 0.0) for position, kind in specs]


def effects() -> list[int]:
    """What the applied entries did and kept, in order."""
    rows = OutboxEntry.objects.filter(kind="test.effect").order_by("id")
    return [row.payload["n"] for row in rows]


def no_pause(seconds: float) -> None:
    """batch_apply's pause between attempts: the tests need none."""


@pytest.mark.usefixtures("recorder")
def test_entries_apply__a_redelivered_batch__applies_only_what_is_new_in_order() -> None:
    # given a batch of five applied in one transaction
    first = log.entries_apply(
        origin="hk", entries=entries(*((n, "test.record") for n in range(1, 6)))
    )
    # when the queue delivers an overlapping batch again
    again = log.entries_apply(
        origin="hk", entries=entries(*((n, "test.record") for n in range(3, 8)))
    )
    # then each entry took effect once, in position order
    assert first == {"applied": 5}
    assert again == {"duplicate": 3, "applied": 2}
    assert effects() == [1, 2, 3, 4, 5, 6, 7]
    assert ReplayPosition.objects.get(origin="hk").position == 7


@pytest.mark.usefixtures("recorder")
def test_entries_apply__a_failing_entry__rolls_the_whole_batch_back() -> None:
    with pytest.raises(log.EntryFailed) as failed:
        log.entries_apply(origin="hk", entries=entries((1, "test.record"), (2, "test.fail")))
    assert failed.value.index == 1
    assert isinstance(failed.value.error, RuntimeError)
    assert not ReplayPosition.objects.filter(origin="hk", position__gt=0).exists()
    assert effects() == []


@pytest.mark.usefixtures("recorder")
def test_batch_apply__a_poison_entry_inside_a_batch__is_parked_and_the_others_apply() -> None:
    # when a batch holds an entry that fails however often it is tried
    batch = entries((1, "test.record"), (2, "test.fail"), (3, "test.record"), (4, "test.record"))
    replay.batch_apply(origin="hk", entries=batch, pause=no_pause)
    # then the others are applied, in order, and the position is past them all
    assert effects() == [1, 3, 4]
    assert ReplayPosition.objects.get(origin="hk").position == 4
    # and the poison one is kept for operators, each failed attempt recorded
    parked = ParkedEntry.objects.get()
    assert (parked.origin, parked.position, parked.kind) == ("hk", 2, "test.fail")
    assert parked.payload == {"n": 2}
    assert parked.error == "RuntimeError: cannot apply"
    attempts = settings.REPLICATION_REPLAY_ATTEMPTS
    assert ReplayError.objects.filter(origin="hk", position=2).count() == attempts
    assert replication_status().parked == 1
    # and its redelivery changes nothing
    replay.batch_apply(origin="hk", entries=batch, pause=no_pause)
    assert effects() == [1, 3, 4]
    assert ParkedEntry.objects.count() == 1


@pytest.mark.usefixtures("recorder")
def test_batch_apply__the_database_failing__parks_nothing_and_raises_for_a_redelivery() -> None:
    def database_down(payload: dict[str, Any], origin: str) -> None:
        raise OperationalError("the server closed the connection")

    log.replay_handler_register("test.down", database_down)
    with pytest.raises(OperationalError):
        replay.batch_apply(origin="hk", entries=entries((1, "test.record"), (2, "test.down")),
                           pause=no_pause)  # fmt: skip
    assert not ParkedEntry.objects.exists()
    assert ReplayPosition.objects.get(origin="hk").position == 1  # the half before it applied
    assert effects() == [1]


@pytest.mark.usefixtures("recorder")
def test_parked_entry_replay__once_its_cause_is_fixed__applies_and_forgets_it() -> None:
    replay.batch_apply(origin="hk", entries=entries((1, "test.fail")), pause=no_pause)
    parked = ParkedEntry.objects.get()
    # when its handler is fixed and an operator replays it
    log.replay_handler_register(
        "test.fail", lambda payload, origin: applied.append((origin, payload))
    )
    log.parked_entry_replay(parked_id=parked.pk)
    # then it took effect and is no longer parked
    assert applied == [("hk", {"n": 1})]
    assert not ParkedEntry.objects.exists()


def keyed(*specs: tuple[int, str, str]) -> list[log.ReplayEntry]:
    """Entries (position, kind, ordering key)."""
    return [log.ReplayEntry(position, kind, {"n": position, "key": key}, 0.0)
            for position, kind, key in specs]  # fmt: skip


@pytest.fixture
def keyed_kinds() -> None:
    def record(payload: dict[str, Any], origin: str) -> None:
        OutboxEntry.objects.create(kind="test.effect", payload=payload)

    def fail(payload: dict[str, Any], origin: str) -> None:
        raise RuntimeError("cannot apply")

    def keys(payload: dict[str, Any]) -> list[str]:
        return str(payload["key"]).split("+")

    log.replay_handler_register("test.keyed", record, batchable=True, keys=keys)
    log.replay_handler_register("test.keyed_fail", fail, batchable=True, keys=keys)


def waiting() -> list[tuple[int, int | None]]:
    return list(ParkedEntry.objects.order_by("position").values_list("position", "behind"))


@pytest.mark.usefixtures("keyed_kinds")
def test_batch_apply__after_a_parked_entry__only_those_of_its_ordering_key_wait_behind_it() -> None:
    # given a poison entry of key a, followed by entries of keys a and b, and one of
    # keys b and a together
    batch = keyed(
        (1, "test.keyed_fail", "a"), (2, "test.keyed", "b"), (3, "test.keyed", "a"),
        (4, "test.keyed", "b"), (5, "test.keyed", "b+a"), (6, "test.keyed", "b"),
    )  # fmt: skip
    # when the batch is replayed
    replay.batch_apply(origin="hk", entries=batch, pause=no_pause)
    # then the poison entry is parked after its attempts, and those sharing its key
    # are parked untried behind it (the one with b too takes b along), the rest applied
    assert effects() == [2, 4]
    assert waiting() == [(1, None), (3, 1), (5, 1), (6, 5)]
    assert set(ReplayError.objects.values_list("position", flat=True)) == {1}
    assert ReplayPosition.objects.get(origin="hk").position == 6
    # and an entry of key a that comes later waits as well, one of key c does not
    replay.batch_apply(origin="hk", entries=keyed((7, "test.keyed", "a"), (8, "test.keyed", "c")),
                       pause=no_pause)  # fmt: skip
    assert effects() == [2, 4, 8]
    assert waiting()[-1] == (7, 1)
    # and an entry waiting cannot be replayed before the one it waits behind
    with pytest.raises(log.ParkedEntryWaiting):
        log.parked_entry_replay(parked_id=ParkedEntry.objects.get(position=3).pk)
    # when its cause is fixed and an operator replays the parked entry
    log.replay_handler_register("test.keyed_fail", lambda payload, origin: None, keys=lambda
                                payload: [payload["key"]])  # fmt: skip
    applied = log.parked_entry_replay(parked_id=ParkedEntry.objects.get(position=1).pk)
    # then those waiting behind it are applied after it, in their order
    assert applied == 5
    assert effects() == [2, 4, 8, 3, 5, 6, 7]
    assert waiting() == []


@pytest.mark.usefixtures("keyed_kinds")
def test_parked_entry_replay__a_waiting_entry_failing_once_released__is_parked_on_its_own() -> None:
    # given entries of key a waiting behind a parked one, the first of them poison too
    batch = keyed((1, "test.keyed_fail", "a"), (2, "test.keyed_fail", "a"), (3, "test.keyed", "a"))
    replay.batch_apply(origin="hk", entries=batch, pause=no_pause)
    assert waiting() == [(1, None), (2, 1), (3, 1)]

    # when the parked one's cause is fixed (not the next one's) and it is replayed
    def fail_second(payload: dict[str, Any], origin: str) -> None:
        if payload["n"] == 2:
            raise RuntimeError("cannot apply either")

    log.replay_handler_register("test.keyed_fail", fail_second, keys=lambda payload: ["a"])
    applied = log.parked_entry_replay(parked_id=ParkedEntry.objects.get(position=1).pk)
    # then the next is parked on its own with its error, and the last waits behind it
    assert applied == 1
    assert waiting() == [(2, None), (3, 2)]
    assert ParkedEntry.objects.get(position=2).error == "RuntimeError: cannot apply either"
    assert effects() == []


@pytest.mark.usefixtures("keyed_kinds")
def test_admin_replay__of_a_parked_entry_and_one_behind_it__applies_both_once_in_order() -> None:
    # given a parked entry and one waiting behind it, and an operator
    replay.batch_apply(origin="hk", entries=keyed((1, "test.keyed_fail", "a"),
                       (2, "test.keyed", "a")), pause=no_pause)  # fmt: skip
    operator = make_user(email="ops@example.com")
    User.objects.filter(pk=operator.pk).update(is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(operator)
    page = browser.get("/admin/wechat_core/parkedentry/")
    assert page.status_code == 200
    assert "waiting, untried" in page.content.decode()
    # when, its cause fixed, the operator replays both
    log.replay_handler_register("test.keyed_fail", lambda payload, origin: None,
                                keys=lambda payload: ["a"])  # fmt: skip
    response = browser.post("/admin/wechat_core/parkedentry/", {
        "action": "replay",
        "_selected_action": [str(pk) for pk in ParkedEntry.objects.values_list("pk", flat=True)],
    }, follow=True)  # fmt: skip
    # then the one behind is applied after the other, once, and nothing is left
    assert "Replayed 2 entries." in response.content.decode()
    assert effects() == [2]  # (entry 1's fixed handler keeps nothing)
    assert not ParkedEntry.objects.exists()


@pytest.mark.usefixtures("recorder")
def test_replay_defer__runs_once_per_key_per_run_of_a_kind_in_the_batch() -> None:
    def deferring(payload: dict[str, Any], origin: str) -> None:
        applied.append((origin, payload))
        log.replay_defer(("flush", 1), lambda: applied.append(("flush", {})))

    log.replay_handler_register("test.defer", deferring)
    kinds = ["test.defer", "test.defer", "test.record", "test.defer"]
    log.entries_apply(origin="hk", entries=entries(*enumerate(kinds, start=1)))
    assert applied == [
        ("hk", {"n": 1}),
        ("hk", {"n": 2}),
        ("flush", {}),  # once for the run of two, before the next kind
        ("hk", {"n": 3}),
        ("hk", {"n": 4}),
        ("flush", {}),  # and at the end of the batch
    ]


def test_batches__runs_of_a_batchable_kind_together_every_other_entry_alone() -> None:
    log.replay_handler_register("test.many", lambda payload, origin: None, batchable=True)
    log.replay_handler_register("test.alone", lambda payload, origin: None)
    kinds = ["test.many"] * 5 + ["test.alone"] * 2 + ["test.many"] * 2
    cut = log.batches(entries(*enumerate(kinds, start=1)), 3)
    assert [[entry.position for entry in batch] for batch in cut] == [
        [1, 2, 3],
        [4, 5],
        [6],
        [7],
        [8, 9],
    ]


# --- The relay ----------------------------------------------------------------------------------


@pytest.fixture
def relay_through_a_link() -> Iterator[Link]:
    """The relay of data centre sh, running in a thread, reaching RabbitMQ through a
    link the test can stall, with a bound of 1 s on the broker's confirms."""
    broker = urlsplit(BROKER_URL)
    link = Link(broker.hostname or "127.0.0.1", broker.port or 5672)
    prefix = f"test-relay-{uuid.uuid4().hex[:8]}"
    stop = threading.Event()

    def relay() -> None:
        try:
            relay_run(stop)
        finally:
            connection.close()  # the thread's own: the test database is dropped at the end

    thread = threading.Thread(target=relay, name="test-relay", daemon=True)
    with override_settings(
        DATACENTER="sh", DATACENTERS=TWO_DCS, MULTI_DATACENTER=True,
        REPLICATION_BROKER_URL=broker_through(link), REPLICATION_QUEUE_PREFIX=prefix,
        REPLICATION_CONFIRM_TIMEOUT_SECONDS=1.0,
    ):  # fmt: skip
        thread.start()
        try:
            yield link
        finally:
            stop.set()
            link.close()  # a relay still waiting on a stalled connection sees it fail
            thread.join(timeout=30)
            queues_delete(prefix, ["sh", "hk"])
    assert not thread.is_alive(), "the relay did not stop"


def queue_declared(name: str) -> bool:
    with Connection(BROKER_URL) as conn:
        channel: Any = conn.channel()
        try:
            channel.queue_declare(name, passive=True)
        except conn.channel_errors:
            return False
    return True


def queue_take(origin: str, destination: str) -> list[dict[str, Any]]:
    """The batches waiting in a replication queue, taken off it (a quorum queue with a
    single active consumer: consumed, as the replay does, not fetched)."""
    bodies: list[dict[str, Any]] = []

    def take(body: dict[str, Any], message: Any) -> None:
        bodies.append(body)
        message.ack()

    with Connection(BROKER_URL) as conn:
        channel: Any = conn.channel()
        queue = queue_for(origin, destination)(channel)
        waiting = channel.queue_declare(queue.name, passive=True).message_count
        with conn.Consumer(queue, callbacks=[take], accept=["json"]):
            while len(bodies) < waiting:
                conn.drain_events(timeout=10)
    return bodies


@pytest.mark.django_db(transaction=True)
def test_relay__a_broker_that_never_confirms__reconnects_and_publishes_again(
    relay_through_a_link: Link,
) -> None:
    link = relay_through_a_link
    queue = queue_name("sh", "hk")
    # given a relay connected to the broker, waiting for entries
    eventually(lambda: queue_declared(queue), timeout=30, what="the relay's queue declared")
    # when its connection goes silent (the broker never confirms what it publishes
    # there) and an entry is written
    link.stall()
    with override_settings(DATACENTERS=TWO_DCS, MULTI_DATACENTER=True):
        log.replicate("test.record", {"n": 1})
    # then the relay gives up on the silent connection, connects again and ships it
    eventually(lambda: OutboxEntry.objects.filter(shipped_at__isnull=False).exists(),
               timeout=30, what="the entry shipped")  # fmt: skip
    assert link.connections >= 2
    batches = queue_take("sh", "hk")
    assert [entry["payload"] for body in batches for entry in body["entries"]] == [{"n": 1}]
