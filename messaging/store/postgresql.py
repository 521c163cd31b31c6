"""The PostgreSQL MessageStore: hand-written SQL for the send path and the sync page.

Sending is the hottest write of the service. On this project's reference
machine each ORM query costs about half a millisecond of Python, and a send
took a dozen of them (14 ms); these statements do the same work in three round
trips (1.7 ms, docs/performance.md):

- `conversation_head` locks the conversation and reads the sender's role;
- `event_append` numbers and stores the event and, when the conversation is
  delivered inline and nothing earlier is waiting, writes every recipient's
  entry in the same statement (sequences locked in user-id order).

When it could not deliver (earlier events pending, or the group is delivered by
Celery) the caller schedules the delivery, which runs the portable store's
batch delivery. The rules are the portable store's (messaging.store.base);
tests/messaging/test_store_parity.py holds the two to the same answers.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.db import connection

from messaging.models import Conversation, DeliveryCursor, HiddenMessage, Membership, Message
from messaging.store.base import (
    AppendedEvent,
    ConversationHead,
    PreviousSend,
    SyncPageJson,
    deliveries_count_on_commit,
)
from messaging.store.portable import PortableStore
from messaging.wire import MessageView, keys_of
from wechat_core import datacenters
from wechat_core.sync.log import notify_on_commit
from wechat_core.sync.models import SyncEntry, UserSequence

CONVERSATION = Conversation._meta.db_table
CURSOR = DeliveryCursor._meta.db_table
MEMBERSHIP = Membership._meta.db_table
MESSAGE = Message._meta.db_table
HIDDEN = HiddenMessage._meta.db_table
ENTRY = SyncEntry._meta.db_table
SEQUENCE = UserSequence._meta.db_table


_HEAD = f"""
SELECT c.kind, c.direct_key, c.member_count, m.role
FROM {CONVERSATION} c
LEFT JOIN {MEMBERSHIP} m
  ON m.conversation_id = c.id AND m.user_id = %s AND m.left_seq IS NULL
WHERE c.id = %s
FOR NO KEY UPDATE OF c
"""  # noqa: S608 - table names are ours

_PREVIOUS = f"""
SELECT id, conversation_id, seq, created_at FROM {MESSAGE}
WHERE sender_id = %s AND client_msg_id = %s
"""  # noqa: S608


def delivery_ctes(*, now: str, condition: str = "") -> str:
    """The CTEs that deliver the `message` CTE's row, from `cursor_moved` to
    `entries` (see _APPEND); `now` is the SQL clock for their timestamps and
    `condition` further limits when the cursor moves. Shared with the group commit
    (messaging.store.groupcommit), whose sends deliver the same way."""
    return f"""cursor_moved AS (
  UPDATE {CURSOR} SET delivered_seq = message.seq, updated_at = {now}
  FROM message
  WHERE conversation_id = %(conversation)s AND delivered_seq = message.seq - 1{condition}
  RETURNING conversation_id
), recipients AS (
  SELECT m.user_id FROM {MEMBERSHIP} m, message
  WHERE m.conversation_id = %(conversation)s AND m.joined_seq <= message.seq
    AND (m.left_seq IS NULL OR m.left_seq >= message.seq)
    AND EXISTS (SELECT 1 FROM cursor_moved)
), locked AS (
  SELECT s.user_id FROM {SEQUENCE} s JOIN recipients r ON r.user_id = s.user_id
  ORDER BY s.user_id
  FOR NO KEY UPDATE OF s
), sequences AS (
  UPDATE {SEQUENCE} s SET last_seq = s.last_seq + 1
  FROM locked WHERE s.user_id = locked.user_id
  RETURNING s.user_id, s.last_seq
), entries AS (
  INSERT INTO {ENTRY} (user_id, seq, kind, conversation_id, message_id, created_at)
  SELECT sequences.user_id, sequences.last_seq, 'message', %(conversation)s, message.id, {now}
  FROM sequences, message
  RETURNING user_id
)"""  # noqa: S608


# Data-modifying CTEs run on one snapshot and see each other only through
# RETURNING, which is what orders them here: the message needs the new
# conversation seq; delivery happens only if the cursor stood right before this
# message (so nothing earlier is pending); the sequences of the message's
# recipients (portable.receives: joined at or before it, not left before it) are
# locked in user-id order, incremented, and used as the seqs of their new entries.
# A recipient without a sequence row would be skipped silently: `recipients`
# counts them so that the caller can stop loudly instead.
_APPEND = f"""
WITH conversation AS (
  UPDATE {CONVERSATION} SET last_seq = last_seq + 1, member_count = %(member_count)s
  WHERE id = %(conversation)s
  RETURNING last_seq
), message AS (
  INSERT INTO {MESSAGE} (conversation_id, seq, sender_id, kind, client_msg_id, body, created_at)
  SELECT %(conversation)s, last_seq, %(sender)s, %(kind)s, %(client_msg_id)s, %(body)s::jsonb, now()
  FROM conversation
  RETURNING id, seq, created_at
), {delivery_ctes(now="now()", condition=" AND %(inline)s")}
SELECT message.id, message.seq, message.created_at,
       EXISTS (SELECT 1 FROM cursor_moved),
       (SELECT json_agg(json_build_array(user_id, last_seq)) FROM sequences),
       (SELECT count(*) FROM recipients)
FROM message
"""  # noqa: S608

# With several data centres (issue 17) a conversation's members homed elsewhere
# have no sequence row here (their log is kept at home): the recipients are the
# members with one, and a member without one is not an error.
_OWN_LOG = f"""
    AND EXISTS (SELECT 1 FROM {SEQUENCE} own WHERE own.user_id = m.user_id)"""  # noqa: S608
_MOVED = "AND EXISTS (SELECT 1 FROM cursor_moved)"


def own_logs_only(sql: str) -> str:
    """`sql` (a statement using delivery_ctes) delivering only to the members with
    a log here: with several data centres. Shared with the group commit."""
    local = sql.replace(_MOVED, _MOVED + _OWN_LOG)
    if local == sql:
        raise RuntimeError("the recipients of delivery_ctes changed: update own_logs_only")
    return local


_APPEND_LOCAL = own_logs_only(_APPEND)

# A message as the wire carries it (wire.MessageView), built by PostgreSQL; the
# keys are checked against MessageView below, so the two cannot drift apart.
_MESSAGE_FIELDS: dict[str, str] = {
    "id": "m.id",
    "conversation": "m.conversation_id",
    "seq": "m.seq",
    "sender": "m.sender_id",
    "kind": "m.kind",
    "body": "CASE WHEN m.recalled_at IS NULL THEN m.body ELSE '{}'::jsonb END",
    "recalled": "m.recalled_at IS NOT NULL",
    "created_at": "to_char(m.created_at AT TIME ZONE 'UTC', "
    '\'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\')',
    "client_msg_id": "CASE WHEN m.sender_id = %(user)s THEN m.client_msg_id END",
}
if set(_MESSAGE_FIELDS) != keys_of(MessageView)[0]:
    raise RuntimeError("the SQL message view and wire.MessageView disagree")
_MESSAGE_JSON = "json_build_object({})".format(
    ", ".join(f"'{key}', {expression}" for key, expression in _MESSAGE_FIELDS.items())
)

# The columns of a conversation a sync page describes (wire.conversation_view's row).
CONVERSATION_ROW = ("id", "kind", "name", "member_count", "last_seq", "direct_key")
_CONVERSATION_COLUMNS = ", ".join(f"c.{column}" for column in CONVERSATION_ROW)

# One sync page as the JSON the wire carries (wire.EntryView), built by
# PostgreSQL: for a catch-up of thousands of entries this is several times
# faster than building Python dicts and encoding them.
SYNC_PAGE = f"""
WITH page AS (
  SELECT seq, kind, conversation_id, message_id, payload FROM {ENTRY}
  WHERE user_id = %(user)s AND seq > %(since)s
  ORDER BY seq LIMIT %(limit)s + 1
), shown AS (
  SELECT * FROM page ORDER BY seq LIMIT %(limit)s
), built AS (
  SELECT
    coalesce(json_agg(json_build_object(
      'seq', s.seq, 'kind', s.kind, 'conversation', s.conversation_id,
      'message', CASE WHEN m.id IS NULL THEN NULL ELSE {_MESSAGE_JSON} END,
      'payload', s.payload
    ) ORDER BY s.seq), '[]')::text AS entries,
    max(s.seq) AS last_seq,
    (SELECT count(*) FROM page) > %(limit)s AS more,
    coalesce(array_agg(DISTINCT s.conversation_id)
             FILTER (WHERE s.conversation_id IS NOT NULL), '{{}}') AS conversation_ids
  FROM shown s LEFT JOIN LATERAL (
    -- One primary-key look-up per entry (LIMIT keeps the planner from flattening it
    -- into a join): joined plainly, it hashed the whole message table for a page of
    -- one entry, 13 ms instead of 0.4 (docs/performance.md, "A sync page").
    SELECT * FROM {MESSAGE} m0 WHERE m0.id = s.message_id LIMIT 1
  ) m ON true
)
SELECT built.entries, built.last_seq, built.more, built.conversation_ids,
  -- The page's conversations (selectors.sync_read_wire describes them), in the same
  -- round trip: as a second (ORM) query they cost more than the page itself.
  (SELECT json_agg(json_build_array({_CONVERSATION_COLUMNS}) ORDER BY c.id)
   FROM {CONVERSATION} c WHERE c.id = ANY(built.conversation_ids))::text
FROM built
"""  # noqa: S608


# Full-history search (migration 0007): the trigram index answers ILIKE for queries
# of three characters or more; the grams index the one- and two-character ones
# (a CJK character or pair, a Latin word of one or two letters).
_CJK = re.compile(r"^[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]{1,2}$")
_SHORT_WORD = re.compile(r"^[a-z0-9]{1,2}$")
# The user's conversations are listed first and given as an array: joined to the
# memberships instead, the planner scanned the grams index once per membership.
_SEARCH = f"""
SELECT m.id FROM {MESSAGE} m
WHERE m.kind IN ('text', 'image', 'file') AND m.recalled_at IS NULL
  AND m.conversation_id = ANY(%(conversations)s)
  AND {{match}}
  AND EXISTS (SELECT 1 FROM {MEMBERSHIP} mb
              WHERE mb.conversation_id = m.conversation_id AND mb.user_id = %(user)s
                AND m.seq >= mb.joined_seq
                AND (mb.left_seq IS NULL OR m.seq <= mb.left_seq))
  AND NOT EXISTS (SELECT 1 FROM {HIDDEN} hm
                  WHERE hm.message_id = m.id AND hm.user_id = %(user)s){{scope}}
ORDER BY m.id DESC
LIMIT %(limit)s
"""  # noqa: S608
# The ILIKE, cheap, is checked first on rows found another way (the user's chats).
_BY_GRAM = (
    "messaging_search_text(m.body) ILIKE %(pattern)s"
    " AND messaging_search_grams(messaging_search_text(m.body)) @> ARRAY[%(gram)s]::text[]"
)
_BY_WORD = "messaging_search_grams(messaging_search_text(m.body)) @> ARRAY[%(gram)s]::text[]"
_BY_PATTERN = "messaging_search_text(m.body) ILIKE %(pattern)s"


def _like_pattern(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_match(query: str) -> tuple[str, dict[str, str]]:
    """The condition finding `query`, and its parameters: a gram for a one- or
    two-character CJK query or a Latin word of one or two letters (whole word), else
    a substring (ILIKE; indexed by trigrams from three characters on)."""
    if _CJK.match(query):
        return _BY_GRAM, {"gram": query, "pattern": _like_pattern(query)}
    if _SHORT_WORD.match(query.lower()):
        return _BY_WORD, {"gram": query.lower()}
    return _BY_PATTERN, {"pattern": _like_pattern(query)}


def sync_page_of(row: tuple[Any, ...]) -> SyncPageJson:
    """SYNC_PAGE's one row as a page, whichever connection ran it (the worker
    thread's, or the event loop's: messaging.store.loopread)."""
    entries_json, last_seq, more, conversation_ids, conversations_json = row
    conversations = [
        dict(zip(CONVERSATION_ROW, values, strict=True))
        for values in json.loads(conversations_json or "[]")
    ]
    return SyncPageJson(entries_json, last_seq, bool(more), sorted(conversation_ids), conversations)


class PostgresStore(PortableStore):
    name = "postgresql"

    def previous_send(self, user_id: int, client_msg_id: str) -> PreviousSend | None:
        with connection.cursor() as cursor:
            cursor.execute(_PREVIOUS, [user_id, client_msg_id])
            row = cursor.fetchone()
        return None if row is None else PreviousSend(row[0], row[1], row[2], row[3])

    def conversation_head(self, conversation_id: int, user_id: int) -> ConversationHead | None:
        with connection.cursor() as cursor:
            cursor.execute(_HEAD, [user_id, conversation_id])
            row = cursor.fetchone()
        return None if row is None else ConversationHead(*row)

    def event_append(
        self,
        *,
        conversation_id: int,
        sender_id: int | None,
        kind: str,
        body: dict[str, Any],
        client_msg_id: str | None,
        member_count: int,
        inline: bool,
    ) -> AppendedEvent:
        with connection.cursor() as cursor:
            cursor.execute(
                _APPEND_LOCAL if datacenters.enabled() else _APPEND,
                {
                    "conversation": conversation_id,
                    "sender": sender_id,
                    "kind": kind,
                    "client_msg_id": client_msg_id,
                    "body": json.dumps(body),
                    "inline": inline,
                    "member_count": member_count,
                },
            )
            message_id, seq, created_at, delivered, pairs, recipients = cursor.fetchone()
        last_seqs = {int(user): int(last) for user, last in (pairs or [])}
        if delivered:
            if len(last_seqs) != recipients:
                # Every member has a sequence row (services.conversations makes
                # them); anything else would silently skip someone, so stop loudly.
                raise RuntimeError(f"conversation {conversation_id}: members without sequences")
            notify_on_commit(last_seqs)
            deliveries_count_on_commit("inline", [len(last_seqs)] if last_seqs else [])
        return AppendedEvent(message_id, seq, created_at, bool(delivered))

    def sync_page_json(self, user_id: int, since: int, limit: int) -> SyncPageJson:
        with connection.cursor() as cursor:
            cursor.execute(SYNC_PAGE, {"user": user_id, "since": since, "limit": limit})
            row = cursor.fetchone()
        return sync_page_of(row)

    def message_search(
        self,
        *,
        user_id: int,
        query: str,
        conversation_id: int | None,
        before_id: int | None,
        limit: int,
    ) -> list[int]:
        match, params = search_match(query)
        received = Membership.objects.filter(user_id=user_id)
        if conversation_id is not None:
            received = received.filter(conversation_id=conversation_id)
        conversations = list(received.values_list("conversation_id", flat=True))
        if not conversations:
            return []
        scope = ""
        if conversation_id is not None:
            scope += "\n  AND m.conversation_id = %(conversation)s"
        if before_id is not None:
            scope += "\n  AND m.id < %(before)s"
        sql = _SEARCH.format(match=match, scope=scope)
        values: dict[str, str | int | list[int] | None] = {
            **params,
            "conversations": conversations,
            "user": user_id,
            "conversation": conversation_id,
            "before": before_id,
            "limit": limit,
        }
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            return [row[0] for row in cursor.fetchall()]
