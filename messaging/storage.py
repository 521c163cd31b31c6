"""Hand-written SQL for the send path, on PostgreSQL.

Sending is the hottest write of the service. On this project's reference
machine each ORM query costs about half a millisecond of Python, and a send
took a dozen of them (14 ms); these statements do the same work in three round
trips (1.7 ms, docs/performance.md). They implement exactly the rules of
services.events and services.delivery for the common case:

- `conversation_head` locks the conversation and reads the sender's role;
- `message_append` numbers and stores the event and, when the conversation is
  delivered inline and nothing earlier is waiting, writes every active
  member's entry in the same statement (sequences locked in user-id order).

When it could not deliver (earlier events pending, or the group is delivered by
Celery) the caller falls back to services.delivery, the ORM path, which also
serves every other database (the embedded SQLite mode).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection

from messaging.models import (
    Conversation,
    DeliveryCursor,
    Membership,
    Message,
    SyncEntry,
    UserSequence,
)

CONVERSATION = Conversation._meta.db_table
CURSOR = DeliveryCursor._meta.db_table
MEMBERSHIP = Membership._meta.db_table
MESSAGE = Message._meta.db_table
ENTRY = SyncEntry._meta.db_table
SEQUENCE = UserSequence._meta.db_table


def available() -> bool:
    return connection.vendor == "postgresql"


@dataclass(frozen=True, slots=True)
class ConversationHead:
    kind: str
    direct_key: str | None
    member_count: int
    role: str | None  # the user's role; None when not an active member


@dataclass(frozen=True, slots=True)
class AppendedMessage:
    id: int
    seq: int
    created_at: dt.datetime
    delivered: bool  # entries written for every active member
    last_seqs: dict[int, int]  # each recipient's new last seq


_HEAD = f"""
SELECT c.kind, c.direct_key, c.member_count, m.role
FROM {CONVERSATION} c
LEFT JOIN {MEMBERSHIP} m
  ON m.conversation_id = c.id AND m.user_id = %s AND m.left_seq IS NULL
WHERE c.id = %s
FOR NO KEY UPDATE OF c
"""  # noqa: S608 - table names are ours


def conversation_head(conversation_id: int, user_id: int) -> ConversationHead | None:
    """The conversation, locked until commit, and the user's role in it."""
    with connection.cursor() as cursor:
        cursor.execute(_HEAD, [user_id, conversation_id])
        row = cursor.fetchone()
    return None if row is None else ConversationHead(*row)


_PREVIOUS = f"""
SELECT id, conversation_id, seq, created_at FROM {MESSAGE}
WHERE sender_id = %s AND client_msg_id = %s
"""  # noqa: S608


def previous_send(user_id: int, client_msg_id: str) -> tuple[int, int, int, dt.datetime] | None:
    """(id, conversation, seq, created_at) of the user's message with this client id."""
    with connection.cursor() as cursor:
        cursor.execute(_PREVIOUS, [user_id, client_msg_id])
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3])


# Data-modifying CTEs run on one snapshot and see each other only through
# RETURNING, which is what orders them here: the message needs the new
# conversation seq; delivery happens only if the cursor stood right before this
# message (so nothing earlier is pending); the sequences of the conversation's
# active members are locked in user-id order, incremented, and used as the seqs
# of their new entries.
_APPEND = f"""
WITH conversation AS (
  UPDATE {CONVERSATION} SET last_seq = last_seq + 1
  WHERE id = %(conversation)s
  RETURNING last_seq
), message AS (
  INSERT INTO {MESSAGE} (conversation_id, seq, sender_id, kind, client_msg_id, body, created_at)
  SELECT %(conversation)s, last_seq, %(sender)s, %(kind)s, %(client_msg_id)s, %(body)s::jsonb, now()
  FROM conversation
  RETURNING id, seq, created_at
), cursor_moved AS (
  UPDATE {CURSOR} SET delivered_seq = message.seq, updated_at = now()
  FROM message
  WHERE conversation_id = %(conversation)s AND delivered_seq = message.seq - 1 AND %(inline)s
  RETURNING conversation_id
), locked AS (
  SELECT s.user_id FROM {SEQUENCE} s
  JOIN {MEMBERSHIP} m
    ON m.user_id = s.user_id AND m.conversation_id = %(conversation)s AND m.left_seq IS NULL
  WHERE EXISTS (SELECT 1 FROM cursor_moved)
  ORDER BY s.user_id
  FOR NO KEY UPDATE OF s
), sequences AS (
  UPDATE {SEQUENCE} s SET last_seq = s.last_seq + 1
  FROM locked WHERE s.user_id = locked.user_id
  RETURNING s.user_id, s.last_seq
), entries AS (
  INSERT INTO {ENTRY} (user_id, seq, kind, conversation_id, message_id, created_at)
  SELECT sequences.user_id, sequences.last_seq, 'message', %(conversation)s, message.id, now()
  FROM sequences, message
  RETURNING user_id
)
SELECT message.id, message.seq, message.created_at,
       EXISTS (SELECT 1 FROM cursor_moved),
       (SELECT json_agg(json_build_array(user_id, last_seq)) FROM sequences)
FROM message
"""  # noqa: S608


def message_append(
    *,
    conversation_id: int,
    sender_id: int,
    kind: str,
    body: dict[str, Any],
    client_msg_id: str,
    inline: bool,
) -> AppendedMessage:
    """Number and store an event of a locked conversation; with `inline`, deliver it
    too unless earlier events are still waiting (then `delivered` is False)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _APPEND,
            {
                "conversation": conversation_id,
                "sender": sender_id,
                "kind": kind,
                "client_msg_id": client_msg_id,
                "body": json.dumps(body),
                "inline": inline,
            },
        )
        message_id, seq, created_at, delivered, pairs = cursor.fetchone()
    last_seqs = {int(user): int(last) for user, last in (pairs or [])}
    return AppendedMessage(message_id, seq, created_at, bool(delivered), last_seqs)


# One sync page as the JSON the wire carries, built by PostgreSQL: for a catch-up
# of thousands of entries this is several times faster than building Python
# dicts and encoding them. selectors.sync_read builds the same shape in Python
# (tests/messaging/test_sync_wire.py holds the two equal).
_SYNC_PAGE = f"""
WITH page AS (
  SELECT seq, kind, conversation_id, message_id, payload FROM {ENTRY}
  WHERE user_id = %(user)s AND seq > %(since)s
  ORDER BY seq LIMIT %(limit)s + 1
), shown AS (
  SELECT * FROM page ORDER BY seq LIMIT %(limit)s
)
SELECT
  coalesce(json_agg(json_build_object(
    'seq', s.seq, 'kind', s.kind, 'conversation', s.conversation_id,
    'message', CASE WHEN m.id IS NULL THEN NULL ELSE json_build_object(
      'id', m.id, 'conversation', m.conversation_id, 'seq', m.seq, 'sender', m.sender_id,
      'kind', m.kind,
      'body', CASE WHEN m.recalled_at IS NULL THEN m.body ELSE '{{}}'::jsonb END,
      'recalled', m.recalled_at IS NOT NULL,
      'created_at', to_char(m.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
      'client_msg_id', CASE WHEN m.sender_id = %(user)s THEN m.client_msg_id END
    ) END,
    'payload', s.payload
  ) ORDER BY s.seq), '[]')::text,
  max(s.seq),
  (SELECT count(*) FROM page) > %(limit)s,
  coalesce(array_agg(DISTINCT s.conversation_id)
           FILTER (WHERE s.conversation_id IS NOT NULL), '{{}}')
FROM shown s LEFT JOIN {MESSAGE} m ON m.id = s.message_id
"""  # noqa: S608


@dataclass(frozen=True, slots=True)
class SyncPageJson:
    entries_json: str
    last_seq: int | None
    more: bool
    conversation_ids: list[int]


def sync_page(user_id: int, since: int, limit: int) -> SyncPageJson:
    with connection.cursor() as cursor:
        cursor.execute(_SYNC_PAGE, {"user": user_id, "since": since, "limit": limit})
        entries_json, last_seq, more, conversation_ids = cursor.fetchone()
    return SyncPageJson(entries_json, last_seq, bool(more), list(conversation_ids))
