"""Group commit of plain sends on PostgreSQL, on the event loop (issue 18).

The websocket's send path (messaging.services.sending_async) hands each checked
text send to this process's `GroupCommitter` and awaits its outcome; no worker
thread is involved. The committer writes the sends that arrived while its
previous commit was in flight (or within MESSAGING_GROUP_COMMIT_WINDOW_MS of
the first one) in one transaction, sent in pipeline mode, so a batch costs one
round trip and one commit however many sends it holds:

    BEGIN
    lock the batch's conversations, in id order            (_LOCK_CONVERSATIONS)
    lock their members' sequences, in user-id order         (_LOCK_SEQUENCES)
    one statement per send, in arrival order                (_SEND)
    with data centres: wake the replication relay           (_NOTIFY_RELAY)
    COMMIT

Locking every conversation and then every sequence, each in id order, before
any write keeps the batch from deadlocking with the thread path (which locks one
conversation, then its recipients' sequences in user-id order) and with other
processes' batches.

Each send keeps its own idempotency and numbering: `_SEND` looks up the sender's
earlier message with the same client_msg_id first (an earlier statement of the
same batch included), numbers the message from the conversation's last seq,
delivers it into its recipients' logs exactly as PostgresStore.event_append does
(messaging/store/postgresql.py), and never raises on the expected refusals:
a sender who is not a member, a 1:1 peer who is not a mutual friend or who
blocks, a conversation of another kind or too big to deliver inline, or a
client_msg_id another connection committed meanwhile (ON CONFLICT DO NOTHING,
before the conversation's seq moves) write nothing and come back as `Refused`.
The caller then runs that send through the thread path (services.sending),
whose checks give the exact error or the duplicate's ack. So one send's refusal
never fails the others of its batch. Anything unexpected (a lost connection,
a statement error) rolls the whole batch back, and every send of it comes back
`Refused` and is retried alone on the thread path: nothing of a failed batch
was written, and retries are idempotent.

Commit order equals sequence order per user: every sequence a batch takes is
locked until its one commit, and statements of a batch run in arrival order.

With several data centres (issue 17) the caller submits only sends into
conversations mastered here (the others are forwarded by the thread path), and
the batch does what services.events.event_store does there: each send delivers
only to the members with a log here, and writes, in the same statement, the
outbox row messaging.replication.event_replicate would write for it when the
conversation has members homed elsewhere (`has_remote_members`, read under the
conversation's lock): the conversation's id and the message, nothing else,
since a text send changes no membership. A conversation whose flag is not
worked out yet (a 1:1 chat's first message) is refused: the thread path works
it out and sends the conversation and its members with that first event. The
relay is woken once per batch (PostgreSQL delivers a transaction's identical
notifications once anyway; this saves the call per row).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import connections

from accounts.models import Block, Friendship
from messaging.store.postgresql import (
    CONVERSATION,
    MEMBERSHIP,
    MESSAGE,
    SEQUENCE,
    delivery_ctes,
    own_logs_only,
)
from wechat_core import datacenters
from wechat_core.metrics import counter, histogram
from wechat_core.replication.log import NOTIFY_CHANNEL
from wechat_core.replication.models import OutboxEntry

logger = logging.getLogger(__name__)

FRIENDSHIP = Friendship._meta.db_table
BLOCK = Block._meta.db_table
OUTBOX = OutboxEntry._meta.db_table

BATCH_SIZE = histogram(
    "messaging_group_commit_sends",
    "Sends written by one group commit (messaging/store/groupcommit.py).",
    [],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
    process_labels=True,
)
BATCH_FAILURES = counter(
    "messaging_group_commit_failures_total",
    "Group commits rolled back whole (their sends were retried one by one).",
    [],
    process_labels=True,
)

_LOCK_CONVERSATIONS = f"""
SELECT id FROM {CONVERSATION} WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE
"""  # noqa: S608 - table names are ours

_LOCK_SEQUENCES = f"""
SELECT s.user_id FROM {SEQUENCE} s
WHERE s.user_id IN (
  SELECT m.user_id FROM {MEMBERSHIP} m JOIN {CONVERSATION} c ON c.id = m.conversation_id
  WHERE m.conversation_id = ANY(%s) AND m.left_seq IS NULL AND c.member_count <= %s
)
ORDER BY s.user_id
FOR NO KEY UPDATE
"""  # noqa: S608

# datetime.isoformat() of a UTC time, as event_replicate writes a message's
# created_at: microseconds only when there are some.
_ISOFORMAT = """(
      to_char(message.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
      || CASE WHEN extract(microseconds FROM message.created_at)::bigint %% 1000000 = 0
              THEN '' ELSE to_char(message.created_at AT TIME ZONE 'UTC', '.US') END
      || '+00:00')"""

# One send. `head` reads the conversation (locked by _LOCK_CONVERSATIONS, so its
# last_seq is the newest, this transaction's earlier sends included); `allowed`
# is services.sending's checks for a text send into a group or a 1:1 chat (an
# active member; in a 1:1 chat, mutual friends and no block either way); the
# message takes last_seq + 1 and only once it is stored does the conversation's
# seq move. From `cursor_moved` on it is PostgresStore's _APPEND. The CASE of the
# last column fails the statement (and so the batch, retried on the thread path,
# which stops loudly) if a recipient has no sequence row.
_SEND = f"""
WITH prev AS (
  SELECT id, conversation_id, seq, created_at FROM {MESSAGE}
  WHERE sender_id = %(sender)s AND client_msg_id = %(client_msg_id)s
), head AS (
  SELECT c.id, c.kind, c.direct_key, c.member_count, c.last_seq, m.role, c.has_remote_members
  FROM {CONVERSATION} c
  LEFT JOIN {MEMBERSHIP} m
    ON m.conversation_id = c.id AND m.user_id = %(sender)s AND m.left_seq IS NULL
  WHERE c.id = %(conversation)s AND NOT EXISTS (SELECT 1 FROM prev)
), peer AS (
  SELECT CASE WHEN split_part(direct_key, ':', 1)::bigint = %(sender)s
              THEN split_part(direct_key, ':', 2)::bigint
              ELSE split_part(direct_key, ':', 1)::bigint END AS id
  FROM head WHERE kind = 'direct'
), allowed AS (
  SELECT head.id, head.last_seq FROM head
  WHERE head.role IS NOT NULL AND head.member_count <= %(inline_max)s
    AND (NOT %(replicating)s OR head.has_remote_members IS NOT NULL)
    AND (head.kind = 'group' OR (
      head.kind = 'direct'
      AND EXISTS (SELECT 1 FROM {FRIENDSHIP} f, peer
                  WHERE f.owner_id = %(sender)s AND f.friend_id = peer.id)
      AND EXISTS (SELECT 1 FROM {FRIENDSHIP} f, peer
                  WHERE f.owner_id = peer.id AND f.friend_id = %(sender)s)
      AND NOT EXISTS (SELECT 1 FROM {BLOCK} b, peer
                      WHERE (b.blocker_id = %(sender)s AND b.blocked_id = peer.id)
                         OR (b.blocker_id = peer.id AND b.blocked_id = %(sender)s))))
), message AS (
  INSERT INTO {MESSAGE} (conversation_id, seq, sender_id, kind, client_msg_id, body, created_at)
  SELECT id, last_seq + 1, %(sender)s, %(kind)s, %(client_msg_id)s, %(body)s::jsonb,
         clock_timestamp()
  FROM allowed
  ON CONFLICT DO NOTHING
  RETURNING id, seq, created_at
), conversation AS (
  UPDATE {CONVERSATION} c SET last_seq = message.seq FROM message
  WHERE c.id = %(conversation)s
  RETURNING c.id
), outbox AS (
  INSERT INTO {OUTBOX} (kind, payload, created_at)
  SELECT 'conversation_event', jsonb_build_object(
    'conversation', jsonb_build_object('id', %(conversation)s::bigint),
    'members', NULL::jsonb,
    'message', jsonb_build_object(
      'id', message.id, 'seq', message.seq, 'sender_id', %(sender)s::bigint,
      'kind', %(kind)s::text, 'body', %(body)s::jsonb,
      'client_msg_id', %(client_msg_id)s::text, 'created_at', {_ISOFORMAT}
    )), clock_timestamp()
  FROM message, head
  WHERE %(replicating)s AND head.has_remote_members
), {delivery_ctes(now="clock_timestamp()")}
SELECT prev.id, prev.conversation_id, prev.seq, prev.created_at,
       message.id, message.seq, message.created_at,
       EXISTS (SELECT 1 FROM cursor_moved),
       (SELECT json_agg(json_build_array(user_id, last_seq)) FROM sequences)::text,
       (SELECT kind FROM head),
       CASE WHEN EXISTS (SELECT 1 FROM cursor_moved)
                 AND (SELECT count(*) FROM sequences) <> (SELECT count(*) FROM recipients)
            THEN ('conversation ' || message.id || ': members without sequences')::int
       END
FROM (SELECT 1) one
LEFT JOIN prev ON true
LEFT JOIN message ON true
"""  # noqa: S608
# With several data centres: the members homed elsewhere have no log here.
_SEND_LOCAL = own_logs_only(_SEND)

# Once per batch with data centres, when a conversation of it replicates (a send of
# it refused meanwhile only makes the relay look once for nothing).
_NOTIFY_RELAY = f"""
SELECT pg_notify(%s, '') FROM {CONVERSATION}
WHERE id = ANY(%s) AND has_remote_members
LIMIT 1
"""  # noqa: S608


@dataclass(frozen=True, slots=True)
class SendRequest:
    """A checked send (services.sending_async): the body is final."""

    sender_id: int
    conversation_id: int
    client_msg_id: str
    kind: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Written:
    """The send is committed (or was already: `duplicate`)."""

    message_id: int
    conversation_id: int
    seq: int
    created_at: dt.datetime
    duplicate: bool
    conversation_kind: str
    # (user, newest seq) of the recipients it was delivered to; empty when it
    # could not be delivered inline (earlier events pending: the caller delivers).
    last_seqs: dict[int, int]
    delivered: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """Nothing was written: run this send on the thread path, which knows why."""

    reason: str


Outcome = Written | Refused


@dataclass(slots=True)
class _Pending:
    request: SendRequest
    future: asyncio.Future[Outcome] = field(repr=False)


def loop_connect_kwargs(*, application_name: str) -> dict[str, Any]:
    """How an asynchronous connection of the event loop reaches Django's database
    (this committer's, and messaging.store.loopread's)."""
    settings_dict = connections["default"].settings_dict
    kwargs: dict[str, Any] = {"dbname": settings_dict["NAME"], "autocommit": True}
    for key, name in (("USER", "user"), ("PASSWORD", "password"), ("HOST", "host")):
        if settings_dict.get(key):
            kwargs[name] = settings_dict[key]
    if settings_dict.get("PORT"):
        kwargs["port"] = int(settings_dict["PORT"])
    kwargs["options"] = "-c TimeZone=UTC"
    kwargs["application_name"] = application_name
    return kwargs


class GroupCommitter:
    """One per event loop: the sends of every link of this process, committed in
    batches on one asynchronous connection, one batch at a time."""

    def __init__(self, *, on_committed: Callable[[list[Written]], None]) -> None:
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._on_committed = on_committed

    async def submit(self, request: SendRequest) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(request, future))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return await future

    async def _run(self) -> None:
        window = settings.MESSAGING_GROUP_COMMIT_WINDOW_MS / 1000
        limit = settings.MESSAGING_GROUP_COMMIT_MAX_SENDS
        while True:
            await self._wake.wait()
            # Let the frames already read reach the queue; then, with a window,
            # wait a little for more.
            await asyncio.sleep(0)
            if window and len(self._queue) < limit:
                await asyncio.sleep(window)
            batch, self._queue = self._queue[:limit], self._queue[limit:]
            if not self._queue:
                self._wake.clear()
            if not batch:
                continue
            try:
                outcomes = await self._commit([pending.request for pending in batch])
            except Exception:
                BATCH_FAILURES.inc()
                logger.warning("group commit of %d sends failed", len(batch), exc_info=True)
                await self._reset()
                outcomes = [Refused("batch failed")] * len(batch)
            written = [outcome for outcome in outcomes if isinstance(outcome, Written)]
            if written:
                try:
                    self._on_committed(written)
                except Exception:
                    logger.warning("effects after a group commit failed", exc_info=True)
            for pending, outcome in zip(batch, outcomes, strict=True):
                if not pending.future.done():
                    pending.future.set_result(outcome)

    async def aclose(self) -> None:
        """Stop committing and close the connection (sends still queued are refused)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pending in self._queue:
            if not pending.future.done():
                pending.future.set_result(Refused("committer closed"))
        self._queue = []
        await self._reset()

    async def _reset(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:
                logger.debug("closing a failed group-commit connection", exc_info=True)

    async def _conn(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is None or self._connection.closed:
            self._connection = await psycopg.AsyncConnection.connect(
                **loop_connect_kwargs(application_name="wechat-groupcommit")
            )
        return self._connection

    async def _commit(self, requests: list[SendRequest]) -> list[Outcome]:
        connection = await self._conn()
        inline_max = settings.MESSAGING_INLINE_DELIVERY_MAX_MEMBERS
        conversations = sorted({request.conversation_id for request in requests})
        replicating = datacenters.enabled()
        send = _SEND_LOCAL if replicating else _SEND
        BATCH_SIZE.observe(value=len(requests))
        # On any error the caller closes the connection, which rolls back.
        async with connection.pipeline():
            await connection.execute("BEGIN")
            await connection.execute(_LOCK_CONVERSATIONS, [conversations])
            await connection.execute(_LOCK_SEQUENCES, [conversations, inline_max])
            cursors = [
                await connection.execute(
                    send,
                    {
                        "sender": request.sender_id,
                        "conversation": request.conversation_id,
                        "client_msg_id": request.client_msg_id,
                        "kind": request.kind,
                        "body": orjson.dumps(request.body).decode(),
                        "inline_max": inline_max,
                        "replicating": replicating,
                    },
                )
                for request in requests
            ]
            if replicating:
                await connection.execute(_NOTIFY_RELAY, [NOTIFY_CHANNEL, conversations])
            await connection.execute("COMMIT")
        rows = [await cursor.fetchone() for cursor in cursors]
        return [_outcome(request, row) for request, row in zip(requests, rows, strict=True)]


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC)


def _outcome(request: SendRequest, row: Any) -> Outcome:
    (prev_id, prev_conversation, prev_seq, prev_created) = row[0:4]
    (message_id, seq, created_at, delivered, pairs, conversation_kind) = row[4:10]
    if prev_id is not None:
        if prev_conversation != request.conversation_id:
            return Refused("client_msg_id used in another conversation")
        return Written(prev_id, prev_conversation, prev_seq, _utc(prev_created), True, "", {}, True)
    if message_id is None:
        return Refused("not allowed here, or raced")
    last_seqs = {int(user): int(last) for user, last in orjson.loads(pairs or "[]")}
    return Written(
        message_id,
        request.conversation_id,
        seq,
        _utc(created_at),
        False,
        str(conversation_kind),
        last_seqs,
        bool(delivered),
    )
