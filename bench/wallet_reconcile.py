"""Reconciliation of a large ledger: time and peak memory of `wallet_reconcile`.

    .venv/bin/python bench/wallet_reconcile.py [--postings 1000000] [--accounts 10000]

Loads the benchmark database's ledger with `--postings` postings (half as many
transactions, each moving a few fen from the clearing account to one of
`--accounts` escrow accounts), the way a restore would: with triggers off
(PostgreSQL's replication role; needs a superuser), then balances set from the
sums. Then reconciles it twice: once timed, once under tracemalloc for the peak
of Python allocations. Prints JSON (docs/performance.md). Targets (issue 14):
under 60 s and under 200 MiB.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

from _setup import configure, emit

LOAD = [
    "SET LOCAL session_replication_role = replica",
    "TRUNCATE wallet_posting, wallet_ledgertransaction, wallet_topup, wallet_withdrawal, "
    "wallet_ledgeraccount RESTART IDENTITY CASCADE",
    "INSERT INTO wallet_ledgeraccount (kind, reference, balance, may_go_negative, created_at) "
    "VALUES ('clearing', 'mch:bench', 0, true, now())",
    "INSERT INTO wallet_ledgeraccount (kind, reference, balance, may_go_negative, created_at) "
    "SELECT 'escrow', 'bench:' || i, 0, false, now() FROM generate_series(1, %(accounts)s) i",
    "INSERT INTO wallet_ledgertransaction (idempotency_key, kind, reason, metadata, created_at) "
    "SELECT 'bench:' || t, 'adjustment', 'bench', '{}', now() "
    "FROM generate_series(1, %(transactions)s) t",
    "INSERT INTO wallet_posting (transaction_id, account_id, amount) "
    "SELECT t, 1, -((t %% 997) + 1) FROM generate_series(1, %(transactions)s) t "
    "UNION ALL SELECT t, 2 + (t %% %(accounts)s), (t %% 997) + 1 "
    "FROM generate_series(1, %(transactions)s) t",
    "UPDATE wallet_ledgeraccount a SET balance = s.total FROM (SELECT account_id, "
    "SUM(amount) AS total FROM wallet_posting GROUP BY account_id) s WHERE a.id = s.account_id",
    "SET LOCAL session_replication_role = DEFAULT",
]


def load(postings: int, accounts: int) -> float:
    from django.db import connection, transaction

    started = time.perf_counter()
    parameters = {"transactions": postings // 2, "accounts": accounts}
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in LOAD:
            cursor.execute(statement, parameters if "%(" in statement else None)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE wallet_posting")
        cursor.execute("VACUUM ANALYZE wallet_ledgertransaction")
        cursor.execute("VACUUM ANALYZE wallet_ledgeraccount")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postings", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=None)
    args = parser.parse_args()
    configure()

    from wallet.reconcile import wallet_reconcile

    load_seconds = load(args.postings, args.accounts)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    report = wallet_reconcile(chunk=args.chunk)
    seconds = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    wallet_reconcile(chunk=args.chunk)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    emit(
        {
            "benchmark": "wallet_reconcile",
            "postings": report.postings_checked,
            "transactions": report.transactions_checked,
            "accounts": report.accounts_checked,
            "ok": report.ok,
            "load_seconds": round(load_seconds, 1),
            "reconcile_seconds": round(seconds, 2),
            "python_peak_mib": round(peak / 2**20, 2),
            "process_max_rss_mib": round(rss_after / 1024, 1),
            "rss_growth_during_reconcile_mib": round((rss_after - rss_before) / 1024, 1),
        }
    )


if __name__ == "__main__":
    main()
