"""Full-history search over 1,000,000 messages, and what its indexes cost a send.

    .venv/bin/python bench/search.py [--messages 1000000] [--queries 200] [--sends 300]

Fills the benchmark database once (kept for later runs: the messages are marked
and counted) with `--messages` text messages generated in Python and loaded with
COPY: 5,000 groups of 10 members among 500 users, so each user is in 100 groups
and can see 2 % of all messages; 70 % Chinese sentences made of common words
(frequent words often, rare ones seldom), 30 % English ones.

Then, in this process (no HTTP: the selector the API calls, snippets included):
- search: p50/p99 milliseconds per query for one- and two-character Chinese
  words and English words, each a frequent and a rare one, by users picked in
  turn (`--queries` per word; the first page of 20 hits);
- send: message_send (the whole service: checks, numbering, inline delivery)
  into a 1:1 chat, `--sends` per variant, in rounds that alternate the variants
  so load on the shared machine hits each alike: with both search indexes as
  deployed (GIN fastupdate on: inserts go to a pending list merged later), with
  fastupdate off (every send updates the index at once: the cost once the
  pending list is merged), and without the indexes. Each round runs in a
  transaction rolled back at the end, so the indexes are dropped in it without
  a rebuild; the ratios are against "without".

Prints JSON.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import random
import statistics
import time
import uuid
from typing import Any

from _cluster import make_pairs
from _setup import configure, emit

MARK = "bench-search"
USERS = 500
MEMBERS = 10
GROUPS = 5000
SEARCHERS = 20
# Common words, frequent first (a word's weight falls with its rank).
CHINESE_WORDS = [
    "我们",
    "今天",
    "明天",
    "你们",
    "现在",
    "时候",
    "已经",
    "可以",
    "没有",
    "知道",
    "什么",
    "怎么",
    "一起",
    "觉得",
    "需要",
    "工作",
    "时间",
    "问题",
    "下午",
    "上午",
    "晚上",
    "朋友",
    "东西",
    "周末",
    "会议",
    "项目",
    "报告",
    "客户",
    "老板",
    "同事",
    "吃饭",
    "回家",
    "地铁",
    "天气",
    "下雨",
    "电话",
    "文件",
    "邮件",
    "计划",
    "预算",
    "方案",
    "数据",
    "系统",
    "测试",
    "上线",
    "版本",
    "需求",
    "设计",
    "周报",
    "月报",
    "合同",
    "发票",
    "快递",
    "医院",
    "学校",
    "孩子",
    "老师",
    "作业",
    "考试",
    "电影",
    "音乐",
    "旅行",
    "机票",
    "酒店",
    "火车",
    "高铁",
    "咖啡",
    "奶茶",
    "火锅",
    "生日",
    "礼物",
    "红包",
    "猫咪",
    "熊猫",
    "长城",
    "故宫",
    "西湖",
    "黄山",
    "春节",
    "中秋",
    "端午",
    "元宵",
]
CHINESE_FILLERS = list("的了是我你在不好吗吧呢啊去来说要看想很也都就还")
ENGLISH_WORDS = [
    "the",
    "a",
    "to",
    "and",
    "of",
    "you",
    "is",
    "for",
    "it",
    "on",
    "that",
    "we",
    "can",
    "at",
    "this",
    "be",
    "with",
    "have",
    "are",
    "me",
    "do",
    "meeting",
    "tomorrow",
    "today",
    "please",
    "thanks",
    "report",
    "project",
    "lunch",
    "call",
    "time",
    "will",
    "send",
    "file",
    "review",
    "deadline",
    "budget",
    "client",
    "release",
    "version",
    "design",
    "test",
    "deploy",
    "dinner",
    "movie",
    "weekend",
    "coffee",
    "train",
    "ticket",
    "hotel",
    "birthday",
    "gift",
    "holiday",
    "invoice",
    "contract",
    "giraffe",
    "saxophone",
]
QUERIES = {
    "chinese_1char_frequent": "好",
    "chinese_1char_rare": "猫",
    "chinese_2char_frequent": "我们",
    "chinese_2char_rare": "熊猫",
    "english_frequent": "meeting",
    "english_rare": "giraffe",
}
INDEXES = ("messaging_message_search_trgm", "messaging_message_search_grams")


def _weighted(words: list[str], rng: random.Random) -> str:
    # Zipf-like: rank r drawn with weight 1/(r+1).
    return rng.choices(words, weights=[1 / (rank + 1) for rank in range(len(words))])[0]


def _sentence(rng: random.Random) -> str:
    if rng.random() < 0.7:
        parts = []
        for _ in range(rng.randint(3, 8)):
            parts.append(_weighted(CHINESE_WORDS, rng))
            if rng.random() < 0.5:
                parts.append(rng.choice(CHINESE_FILLERS))
        return "".join(parts)
    words = [_weighted(ENGLISH_WORDS, rng) for _ in range(rng.randint(4, 12))]
    return " ".join(words).capitalize()


PASSWORD = "bench-search-passphrase-16"


def _fill(messages: int) -> dict[str, Any]:
    """The users, groups, members and messages (once); returns the users."""
    from django.db import connection, transaction

    from accounts.models import User
    from accounts.services.registration import user_create

    def marked_users() -> list[int]:
        return list(
            User.objects.filter(email__startswith=f"{MARK}-")
            .order_by("id")
            .values_list("id", flat=True)
        )

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM messaging_conversation WHERE name = %s", [MARK])
        groups_there = cursor.fetchone()[0]
    users = marked_users()
    if groups_there == GROUPS and len(users) == USERS:
        return {"users": users, "loaded": "earlier run"}
    per_group = max(1, messages // GROUPS)
    started = time.perf_counter()
    rng = random.Random(16)
    with transaction.atomic(), connection.cursor() as cursor:
        template = user_create(
            phone=None, email=f"{MARK}-0@example.com", password=PASSWORD, nickname="B0"
        )
        columns = [
            field.column
            for field in User._meta.concrete_fields
            if field.column not in ("id", "email", "phone", "wechat_id", "nickname")
        ]
        listed = ", ".join(columns)
        cursor.execute(
            f"INSERT INTO accounts_user ({listed}, email, nickname) "  # noqa: S608
            f"SELECT {listed}, %s || g || '@example.com', 'B' || g "
            "FROM accounts_user, generate_series(1, %s) g WHERE id = %s",
            [f"{MARK}-", USERS - 1, template.pk],
        )
        users = marked_users()
        cursor.execute(
            "INSERT INTO messaging_conversation (kind, name, announcement, owner_id, last_seq, "
            "member_count, created_at) SELECT 'group', %s, '', NULL, %s, %s, now() "
            "FROM generate_series(1, %s) RETURNING id",
            [MARK, per_group, MEMBERS, GROUPS],
        )
        conversations = sorted(row[0] for row in cursor.fetchall())
        members = {
            conversation: [users[(7 * g + 53 * k) % USERS] for k in range(MEMBERS)]
            for g, conversation in enumerate(conversations)
        }
        buffer = io.StringIO()
        for conversation, people in members.items():
            for user in people:
                buffer.write(f"{conversation}\t{user}\tmember\t1\t{per_group}\t2026-01-01\n")
        _copy(
            cursor,
            "COPY messaging_membership (conversation_id, user_id, role, joined_seq, read_seq, "
            "joined_at) FROM STDIN",
            buffer,
        )
        # The search indexes are built after the load, as a restore would.
        cursor.execute(f"DROP INDEX {INDEXES[0]}; DROP INDEX {INDEXES[1]}")
        buffer = io.StringIO()
        for conversation, people in members.items():
            for seq in range(1, per_group + 1):
                text = json.dumps({"text": _sentence(rng)}, ensure_ascii=False)
                buffer.write(
                    f"{conversation}\t{seq}\t{people[seq % MEMBERS]}\ttext\t{text}\t2026-01-01\n"
                )
        _copy(
            cursor,
            "COPY messaging_message (conversation_id, seq, sender_id, kind, body, created_at) "
            "FROM STDIN",
            buffer,
        )
    loaded = time.perf_counter() - started
    migration = importlib.import_module("messaging.migrations.0007_message_search")
    index_started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(migration.INDEXES)
    indexed = time.perf_counter() - index_started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE messaging_message")
        cursor.execute("VACUUM ANALYZE messaging_membership")
    return {"users": users, "load_s": round(loaded, 1), "index_build_s": round(indexed, 1)}


def _copy(cursor: Any, sql: str, buffer: io.StringIO) -> None:
    buffer.seek(0)
    with cursor.cursor.copy(sql) as copy:
        while chunk := buffer.read(1 << 20):
            copy.write(chunk)


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
    }


def _login(email: str) -> Any:
    from accounts.models import Platform
    from accounts.services.login import login
    from accounts.tickets import ticket_verify
    from accounts.types import DeviceInfo

    device = DeviceInfo(platform=Platform.OTHER, client_version="1.0.0", name="bench")
    token = login(identifier=email, password=PASSWORD, device=device, ip=None).ticket
    return ticket_verify(token=token)


def _searches(users: list[int], queries: int) -> dict[str, Any]:
    from accounts.models import User
    from messaging.selectors import message_search

    searchers = users[:: len(users) // SEARCHERS][:SEARCHERS]
    tickets = [_login(User.objects.get(pk=user).email or "") for user in searchers]
    results: dict[str, Any] = {}
    for name, query in QUERIES.items():
        samples: list[float] = []
        hits: list[int] = []
        for n in range(queries + 5):
            ticket = tickets[n % len(tickets)]
            started = time.perf_counter()
            answer = message_search(ticket=ticket, user_id=ticket.user_id, query=query, limit=20)
            elapsed = (time.perf_counter() - started) * 1000
            if n >= 5:  # the first few warm the caches
                samples.append(elapsed)
                hits.append(len(answer["results"]))
        results[name] = {"query": query, **_percentiles(samples),
                         "hits_per_page_mean": round(statistics.mean(hits), 1)}  # fmt: skip
    return results


def _matching_share() -> dict[str, float]:
    """How many of all messages each query matches (its selectivity)."""
    from django.db import connection

    from messaging.store.postgresql import search_match

    shares = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM messaging_message")
        total = cursor.fetchone()[0]
        for name, query in QUERIES.items():
            match, params = search_match(query)
            cursor.execute(
                "SELECT count(*) FROM messaging_message m WHERE m.kind IN "  # noqa: S608
                f"('text', 'image', 'file') AND m.recalled_at IS NULL AND {match}",
                params,
            )
            shares[name] = round(100 * cursor.fetchone()[0] / total, 2)
    return shares


class _Rollback(Exception):
    pass


def _sends(sends: int, rounds: int) -> dict[str, Any]:
    from django.db import connection, transaction

    from accounts.tickets import ticket_verify
    from messaging.services.sending import message_send
    from messaging.types import OutgoingContent

    sender, _, chat = make_pairs(1)[0]
    ticket = ticket_verify(token=sender.ticket)
    rng = random.Random(7)
    texts = [_sentence(rng) for _ in range(sends)]
    variants = {
        "indexed": "",
        "indexed_fastupdate_off": "; ".join(
            f"ALTER INDEX {index} SET (fastupdate = off)" for index in INDEXES
        ),
        "no_search_index": "; ".join(f"DROP INDEX {index}" for index in INDEXES),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for round_number in range(rounds):
        order = list(variants)
        if round_number % 2:
            order.reverse()
        for name in order:
            try:
                with transaction.atomic():
                    if variants[name]:
                        with connection.cursor() as cursor:
                            cursor.execute(variants[name])
                    for n, text in enumerate(texts):
                        started = time.perf_counter()
                        message_send(
                            ticket=ticket,
                            user_id=ticket.user_id,
                            conversation_id=chat,
                            client_msg_id=f"s{round_number}-{name[:9]}-{n}-{uuid.uuid4().hex[:8]}",
                            content=OutgoingContent(kind="text", text=text),
                        )
                        samples[name].append((time.perf_counter() - started) * 1000)
                    raise _Rollback
            except _Rollback:
                pass
    summary = {name: {**_percentiles(values), "mean_ms": round(statistics.mean(values), 3)}
               for name, values in samples.items()}  # fmt: skip
    base = summary["no_search_index"]["mean_ms"]
    for name in ("indexed", "indexed_fastupdate_off"):
        summary[name]["mean_ratio_to_no_search_index"] = round(summary[name]["mean_ms"] / base, 3)
    return {"sends_per_variant": sends * rounds, "rounds": rounds, **summary}


def _index_sizes() -> dict[str, str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, pg_size_pretty(pg_relation_size(oid)) FROM pg_class "
            "WHERE relname = ANY(%s) OR relname = 'messaging_message'",
            [list(INDEXES)],
        )
        return dict(cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--sends", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    os.environ["MESSAGING_SEARCHES_PER_MINUTE"] = "1000000000"
    os.environ["MESSAGING_SENDS_PER_MINUTE"] = "1000000000"
    configure()
    from django.db import connection

    filled = _fill(args.messages)
    users = filled.pop("users")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM messaging_message")
        total = cursor.fetchone()[0]
    emit(
        {
            "benchmark": "search",
            "load_average": os.getloadavg(),
            "messages": total,
            "visible_per_user": f"{MEMBERS * GROUPS // USERS} groups, "
            f"{100 * MEMBERS / USERS:.0f} % of the messages",
            "data": filled,
            "sizes": _index_sizes(),
            "matching_percent_of_all": _matching_share(),
            "search": _searches(users, args.queries),
            "send": _sends(args.sends, args.rounds),
            "load_average_after": os.getloadavg(),
        }
    )


if __name__ == "__main__":
    main()
