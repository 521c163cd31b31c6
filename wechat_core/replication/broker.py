"""The replication queues on RabbitMQ, the relay that fills them and the replay
worker that empties them.

One durable quorum queue per (origin, destination) pair,
`<REPLICATION_QUEUE_PREFIX>.<origin>.<destination>`, with a single active
consumer: however many replay workers a data centre runs, one applies a queue
at a time, in its order. The relay publishes with publisher confirms: a batch
counts as shipped once RabbitMQ confirmed it, which for a quorum queue means a
majority of its replicas wrote it.

Relay, per round: (1) number the unshipped entries (positions contiguous from 1,
committed before anything is sent, so a batch sent twice carries the same
positions); (2) publish the batch to every peer's queue; (3) mark it shipped. A
crash between (2) and (3) sends the batch again: the replay skips what it has.
Every wait on the broker is bounded (REPLICATION_CONFIRM_TIMEOUT_SECONDS): a
broker that takes the publish and never confirms it, or a link that silently
drops packets, costs the relay that long; it then drops the connection without
the closing handshake (which would wait as long), reconnects and publishes the
batch again.
One relay runs at a time per data centre (a PostgreSQL advisory lock; a second
one waits as a standby).

Replay: each message is a relay batch. The replay takes what has arrived (up to
REPLICATION_REPLAY_BATCH entries), applies it in one transaction per origin
(`replay.batch_apply`) and acknowledges the messages after the commit. A batch
that fails is applied again entry by entry, and an entry that keeps failing is
parked so that the rest goes on. A failure that is not an entry's (the database)
drops the connection (RabbitMQ returns the unacknowledged messages to the head of
the queue) and retries after a pause, so order holds.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from amqp.exceptions import RecoverableConnectionError
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Max
from django.utils import timezone
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.message import Message

from wechat_core import datacenters
from wechat_core.metrics import counter
from wechat_core.replication.log import NOTIFY_CHANNEL, ReplayEntry, batches
from wechat_core.replication.models import OutboxEntry
from wechat_core.replication.replay import batch_apply

logger = logging.getLogger(__name__)

RELAY_LOCK = 0x5245504C  # "REPL": one relay per data centre
KEEP_SHIPPED_SECONDS = 3600.0
GATHER_SECONDS = 0.01  # how long the replay waits for one more message before applying

SHIPPED = counter(
    "replication_shipped_total",
    "Outbox entries confirmed by the broker, by destination data centre.",
    ["peer"],
    process_labels=True,
)
UNCONFIRMED = counter(
    "replication_publish_timeouts_total",
    "Relay batches the broker did not confirm in REPLICATION_CONFIRM_TIMEOUT_SECONDS (the "
    "relay reconnected and published them again), by destination data centre.",
    ["peer"],
    process_labels=True,
)


def queue_name(origin: str, destination: str) -> str:
    return f"{settings.REPLICATION_QUEUE_PREFIX}.{origin}.{destination}"


def queue_for(origin: str, destination: str) -> Queue:
    name = queue_name(origin, destination)
    return Queue(
        name,
        exchange=Exchange(""),
        routing_key=name,
        durable=True,
        auto_delete=False,
        queue_arguments={"x-queue-type": "quorum", "x-single-active-consumer": True},
    )


def broker_connection() -> Connection:
    return Connection(
        settings.REPLICATION_BROKER_URL,
        transport_options={"confirm_publish": True},
        connect_timeout=3,
        heartbeat=10,
    )


def _database_url() -> str:
    db = settings.DATABASES["default"]
    return psycopg.conninfo.make_conninfo(
        dbname=db["NAME"], user=db.get("USER") or None, password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None, port=str(db.get("PORT") or "") or None,
    )  # fmt: skip


# --- Relay --------------------------------------------------------------------------------


def outbox_number(limit: int) -> list[OutboxEntry]:
    """The next entries to ship, numbered: first any numbered but unshipped (a batch
    that was sent, or not, before a crash), else the oldest unshipped, numbered now."""
    with transaction.atomic():
        pending = list(
            OutboxEntry.objects.filter(shipped_at__isnull=True, position__isnull=False).order_by(
                "position"
            )[:limit]
        )
        if pending:
            return pending
        fresh = list(
            OutboxEntry.objects.select_for_update()
            .filter(shipped_at__isnull=True, position__isnull=True)
            .order_by("id")[:limit]
        )
        if not fresh:
            return []
        last = OutboxEntry.objects.aggregate(last=Max("position"))["last"] or 0
        for offset, entry in enumerate(fresh, start=1):
            entry.position = last + offset
        OutboxEntry.objects.bulk_update(fresh, ["position"])
        return fresh


def batch_body(entries: list[OutboxEntry]) -> dict[str, Any]:
    return {
        "origin": datacenters.here(),
        "entries": [
            {
                "position": entry.position,
                "kind": entry.kind,
                "payload": entry.payload,
                "written_at": entry.created_at.timestamp(),
            }
            for entry in entries
        ],
    }


def outbox_mark_shipped(entries: list[OutboxEntry]) -> None:
    OutboxEntry.objects.filter(pk__in=[entry.pk for entry in entries]).update(
        shipped_at=timezone.now()
    )


def outbox_trim() -> int:
    """Forget entries shipped long ago (the newest stays: it holds the last position)."""
    last = OutboxEntry.objects.aggregate(last=Max("position"))["last"] or 0
    cutoff = timezone.now() - dt.timedelta(seconds=KEEP_SHIPPED_SECONDS)
    deleted, _ = OutboxEntry.objects.filter(shipped_at__lt=cutoff, position__lt=last).delete()
    return deleted


def relay_run(stop: threading.Event) -> None:
    """Ship the outbox to every peer until `stop` is set (the relay command)."""
    with psycopg.connect(_database_url(), autocommit=True) as lock_conn:
        logger.info("relay %s: waiting for the relay lock", datacenters.here())
        while not stop.is_set():
            row = lock_conn.execute("SELECT pg_try_advisory_lock(%s)", [RELAY_LOCK]).fetchone()
            if row and row[0]:
                break
            stop.wait(1.0)
        lock_conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        logger.info("relay %s: shipping to %s", datacenters.here(), datacenters.peers())
        last_trim = time.monotonic()
        while not stop.is_set():
            try:
                _relay_connected(stop, lock_conn)
            except Exception:
                logger.warning("relay: broker or database failed; retrying", exc_info=True)
                close_old_connections()
                connection.close()
                stop.wait(1.0)
            if time.monotonic() - last_trim > 60:
                last_trim = time.monotonic()
                outbox_trim()


def _relay_connected(stop: threading.Event, lock_conn: psycopg.Connection[Any]) -> None:
    with broker_connection() as conn:
        conn.ensure_connection(max_retries=1)
        # Every read on the connection gives up after the bound (kombu and py-amqp
        # wait for the broker's answers, confirms included, without one by default).
        conn.connection.sock.settimeout(settings.REPLICATION_CONFIRM_TIMEOUT_SECONDS)
        broker_errors: tuple[type[BaseException], ...] = (*conn.connection_errors, OSError)
        try:
            _relay_rounds(stop, lock_conn, conn)
        except broker_errors:
            # A silent broker would also leave the closing handshake unanswered.
            conn.collect()
            raise


def _relay_rounds(stop: threading.Event, lock_conn: psycopg.Connection[Any],
                  conn: Connection) -> None:  # fmt: skip
    peers = datacenters.peers()
    here = datacenters.here()
    channel = conn.channel()
    queues = {peer: queue_for(here, peer)(channel) for peer in peers}
    for queue in queues.values():
        queue.declare()
    producer = Producer(channel)
    while not stop.is_set():
        entries = outbox_number(settings.REPLICATION_RELAY_BATCH)
        if not entries:
            # Wait for a commit's NOTIFY (or the poll interval), then look again.
            lock_conn.execute("SELECT 1")  # the lock's connection is alive
            for _ in lock_conn.notifies(timeout=settings.REPLICATION_POLL_SECONDS):
                break
            conn.heartbeat_check()
            continue
        body = batch_body(entries)
        for peer, queue in queues.items():
            _publish(producer, peer, queue, body)
            SHIPPED.inc(peer, amount=len(entries))
        outbox_mark_shipped(entries)


def _publish(producer: Producer, peer: str, queue: Queue, body: dict[str, Any]) -> None:
    """Publish a batch and wait for its confirm, at most the bound (then raise)."""
    bound = settings.REPLICATION_CONFIRM_TIMEOUT_SECONDS
    try:
        producer.publish(
            body,
            exchange="",
            routing_key=queue.name,
            serializer="json",
            delivery_mode=2,
            timeout=bound,
            confirm_timeout=bound,
        )
    except (TimeoutError, RecoverableConnectionError):
        UNCONFIRMED.inc(peer)
        logger.warning("relay: %s's queue did not confirm a batch in %.1f s; reconnecting to "
                       "publish it again", peer, bound)  # fmt: skip
        raise


# --- Replay -------------------------------------------------------------------------------


def replay_run(stop: threading.Event, *, on_batch: Callable[[int], None] | None = None) -> None:
    """Apply the peers' entries until `stop` is set (the replay command)."""
    delay = 0.2
    while not stop.is_set():
        try:
            _replay_connected(stop, on_batch)
            delay = 0.2
        except Exception:
            logger.warning("replay: failed; reconnecting in %.1f s", delay, exc_info=True)
            connection.close()
            stop.wait(delay)
            delay = min(delay * 2, 5.0)


def _replay_connected(stop: threading.Event, on_batch: Callable[[int], None] | None) -> None:
    here = datacenters.here()
    arrived: list[tuple[dict[str, Any], Message]] = []

    def on_message(body: dict[str, Any], message: Message) -> None:
        arrived.append((body, message))

    with broker_connection() as conn:
        conn.ensure_connection(max_retries=1)
        channel = conn.channel()
        queues = [queue_for(peer, here)(channel) for peer in datacenters.peers()]
        for queue in queues:
            queue.declare()
        consumer = Consumer(channel, queues=queues, callbacks=[on_message], accept=["json"])
        consumer.qos(prefetch_count=settings.REPLICATION_PREFETCH)
        with consumer:
            logger.info("replay %s: consuming %s", here, [queue.name for queue in queues])
            while not stop.is_set():
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    conn.heartbeat_check()
                    continue
                if not arrived:
                    continue  # another method than a delivery
                _gather(conn, arrived)
                with _heartbeats(conn):
                    applied = arrived_apply(arrived, stop=stop)
                for _, message in arrived:  # after the commit: at least once
                    message.ack()
                arrived.clear()
                if on_batch is not None:
                    on_batch(applied)


def _gather(conn: Connection, arrived: list[tuple[dict[str, Any], Message]]) -> None:
    """Take in what the broker has already pushed (up to the prefetch), without
    waiting for more than a moment: a backlog is applied in large transactions,
    a trickle one message at a time."""
    while sum(len(body["entries"]) for body, _ in arrived) < settings.REPLICATION_REPLAY_BATCH:
        try:
            conn.drain_events(timeout=GATHER_SECONDS)
        except TimeoutError:
            return


@contextmanager
def _heartbeats(conn: Connection) -> Iterator[None]:
    """While a batch is applied nobody reads or writes the connection: a thread sends
    the heartbeats, so that the broker does not take a long catch-up for a dead
    client (it drops a connection silent for two heartbeat intervals). The thread
    is the connection's only user until the batch is done."""
    transport = conn.connection
    interval = float(getattr(transport, "heartbeat", 0) or 0) / 3
    if not interval:
        yield
        return
    done = threading.Event()

    def beat() -> None:
        while not done.wait(interval):
            try:
                transport.send_heartbeat()
            except Exception:  # the connection is gone: the acknowledgements will say so
                return

    thread = threading.Thread(target=beat, name="replay-heartbeats", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def arrived_apply(arrived: list[tuple[dict[str, Any], Message]], *,
                  stop: threading.Event) -> int:  # fmt: skip
    """Apply the entries of the messages that arrived, per origin in queue order, in
    transactions of at most REPLICATION_REPLAY_BATCH entries (`log.batches`).
    Returns how many."""
    by_origin: dict[str, list[ReplayEntry]] = {}
    for body, _ in arrived:
        by_origin.setdefault(str(body["origin"]), []).extend(
            ReplayEntry(
                int(entry["position"]),
                str(entry["kind"]),
                dict(entry["payload"]),
                float(entry["written_at"]),
            )
            for entry in body["entries"]
        )
    for origin, entries in by_origin.items():
        for batch in batches(entries, settings.REPLICATION_REPLAY_BATCH):
            batch_apply(origin=origin, entries=batch, pause=stop.wait)
    return sum(len(entries) for entries in by_origin.values())
