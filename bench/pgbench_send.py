"""PostgreSQL alone: the send's write transaction under pgbench (issue 18).

    .venv/bin/python bench/pgbench_send.py [--seconds 10] [--clients 16] [--batch 16]

On the bench database with 32 1:1 chats (bench/_cluster.make_pairs), pgbench runs:

- `alone`: one send per transaction, the thread path's statements
  (messaging/store/postgresql.py: the earlier send's look-up, the head lock, the
  contact relation, the _APPEND CTE), with `--clients` clients: the limit of a
  design without batching;
- `grouped`: `--batch` sends per transaction, the group commit's statements
  (messaging/store/groupcommit.py: conversations and sequences locked in id
  order, one _SEND per send), with `--clients` clients and with 1 client (one
  ASGI process's committer).

Prints JSON: transactions/s and sends/s of each, and the load average.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from _setup import configure, emit


def _sql(template: str, values: dict[str, str]) -> str:
    text = template
    for name, value in values.items():
        text = text.replace(f"%({name})s", value)
    # pgbench reads one statement per line unless it ends with a backslash...
    return " ".join(line.strip() for line in text.strip().splitlines()) + ";"


def _scripts(batch: int) -> tuple[str, str]:
    from accounts.models import Block, Friendship
    from messaging.store import groupcommit, postgresql

    friendship, block = Friendship._meta.db_table, Block._meta.db_table
    head = postgresql._HEAD.replace("%s", ":u", 1).replace("%s", ":c", 1)
    previous = postgresql._PREVIOUS.replace("%s", ":u", 1).replace("%s", "'pg-' || :n", 1)
    relation = (  # table names are ours
        f"SELECT 'friend', owner_id FROM {friendship} WHERE (owner_id = :u AND friend_id = :p) "  # noqa: S608
        f"OR (owner_id = :p AND friend_id = :u) UNION ALL SELECT 'block', blocker_id FROM {block} "
        "WHERE (blocker_id = :u AND blocked_id = :p) OR (blocker_id = :p AND blocked_id = :u)"
    )
    append = _sql(
        postgresql._APPEND,
        {
            "conversation": ":c",
            "sender": ":u",
            "kind": "'text'",
            "client_msg_id": "'pg-' || :n",
            "body": '\'{"text":"pgbench"}\'',
            "inline": "true",
            "member_count": "2",
        },
    )
    alone = "\n".join(
        [
            r"\set c random(1, 32)",
            r"\set u 2 * :c - 1",
            r"\set p 2 * :c",
            r"\set n random(1, 9000000000000000000)",
            "BEGIN;",
            _sql(previous, {}),
            _sql(head, {}),
            _sql(relation, {}),
            append,
            "COMMIT;",
        ]
    )
    lines = []
    for index in range(batch):
        lines += [
            rf"\set c{index} random(1, 32)",
            rf"\set u{index} 2 * :c{index} - 1",
            rf"\set n{index} random(1, 9000000000000000000)",
        ]
    conversations = "ARRAY[" + ", ".join(f":c{index}" for index in range(batch)) + "]::bigint[]"
    lines += [
        r"\startpipeline",  # one round trip, as the committer sends it (pipeline mode)
        "BEGIN;",
        _sql(groupcommit._LOCK_CONVERSATIONS.replace("%s", conversations), {}),
        _sql(
            groupcommit._LOCK_SEQUENCES.replace("%s", conversations, 1).replace("%s", "50", 1),
            {},
        ),
    ]
    for index in range(batch):
        lines.append(
            _sql(
                groupcommit._SEND,
                {
                    "conversation": f":c{index}",
                    "sender": f":u{index}",
                    "kind": "'text'",
                    "client_msg_id": f"'pg-' || :n{index}",
                    "body": '\'{"text":"pgbench"}\'',
                    "inline_max": "50",
                },
            )
        )
    lines += ["COMMIT;", r"\endpipeline"]
    return alone, "\n".join(lines)


def _pgbench(url: str, script: str, clients: int, seconds: float) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as file:
        file.write(script + "\n")
    try:
        result = subprocess.run(
            [
                "pgbench",
                "-n",
                "-M",
                "prepared",  # as psycopg runs them after five executions: planned once
                "-c",
                str(clients),
                "-j",
                str(min(clients, 2)),
                "-T",
                str(int(seconds)),
                "-f",
                file.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        Path(file.name).unlink()
    found = re.search(r"tps = ([0-9.]+)", result.stdout)
    if found is None:
        raise RuntimeError(result.stdout + result.stderr)
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    configure()
    from _cluster import make_pairs
    from django.db import connection

    from messaging.models import Conversation

    expected = {n: f"{2 * n - 1}:{2 * n}" for n in range(1, 33)}
    found = dict(Conversation.objects.filter(pk__in=expected).values_list("pk", "direct_key"))
    if found != expected:  # the scripts address chat c as users 2c-1 and 2c
        make_pairs(32)
        found = dict(Conversation.objects.filter(pk__in=expected).values_list("pk", "direct_key"))
        if found != expected:
            raise SystemExit("run on a fresh bench database: chats 1-32 must be users 2c-1, 2c")
    url = "postgresql://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict)
    alone, grouped = _scripts(args.batch)
    results: dict[str, Any] = {"benchmark": "pgbench_send", **vars(args)}
    tps = _pgbench(url, alone, args.clients, args.seconds)
    results["alone"] = {"clients": args.clients, "tps": tps, "sends_per_second": tps}
    for clients in (args.clients, 1):
        tps = _pgbench(url, grouped, clients, args.seconds)
        results[f"grouped_{clients}_clients"] = {
            "clients": clients,
            "tps": tps,
            "sends_per_second": round(tps * args.batch, 1),
        }
    results["load_average"] = os.getloadavg()
    emit(results)


if __name__ == "__main__":
    main()
