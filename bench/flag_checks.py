"""Cost of a gray-release check in this process (the issue's target: ≤ 2 µs).

    .venv/bin/python bench/flag_checks.py [--iterations 200000]

Creates features with different rules on the benchmark database, then times
`evaluate(key=..., subject=...)`, the one call views, consumers, tasks and
commands make, for a subject built once (as a request or a connection does).
The compiled features come from the process snapshot: no database or cache
call is made per check (the snapshot re-reads a version stamp from Redis at
most every SHARED_STATE_POLL_SECONDS; that poll is included). Also times the
pieces: bucketing alone (with and without hashing the salt), client_flags for
a login, and building the subject; and what recording the outcome of a
guarded code path adds (`with feature_outcome(...)`, guarded or not).

Prints JSON: microseconds per call, the best of five runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from _setup import configure, emit

REPEATS = 5


def per_call_us(function: Callable[[], object], iterations: int) -> float:
    """Best of REPEATS timed runs: the machine is shared, and other load only ever
    adds time."""
    for _ in range(min(iterations, 2000)):  # warm-up
        function()
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(iterations):
            function()
        best = min(best, time.perf_counter() - started)
    return best / iterations * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=200_000)
    args = parser.parse_args()
    # Pushes of the client-visible feature run in this process (no worker needed).
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    configure()

    from accounts.models import Platform
    from accounts.services.login import login
    from accounts.services.registration import user_create
    from accounts.tickets import ticket_verify
    from accounts.types import DeviceInfo
    from grayrelease.bucketing import bucket, bucket_of, salt_seed
    from grayrelease.evaluation import client_flags, evaluate, feature_outcome
    from grayrelease.models import Feature
    from grayrelease.selectors import subject_for_ticket
    from grayrelease.services.features import feature_create
    from grayrelease.types import FeatureSpec, GuardSpec, TimeWindowSpec, VersionRangeSpec
    from wechat_core.selectors import local_placement

    Feature.objects.filter(key__startswith="bench.").delete()  # earlier runs'
    run = uuid.uuid4().hex[:8]
    email = f"bench-{run}@example.com"
    user_create(phone=None, email=email, password="bench-passphrase-1", nickname="Bench")
    denied = user_create(
        phone=None, email=f"denied-{run}@example.com", password="bench-passphrase-1", nickname="D"
    )
    device = DeviceInfo(platform=Platform.IOS, client_version="8.0.50", name="bench")
    token = login(identifier=email, password="bench-passphrase-1", device=device, ip=None).ticket
    ticket = ticket_verify(token=token)
    here = local_placement()
    now = dt.datetime.now(dt.UTC)
    specs = {
        "killed": FeatureSpec(key=f"bench.{run}.killed", killed=True),
        "percentage_only": FeatureSpec(key=f"bench.{run}.pct", percentage_bp=5000),
        "full_100": FeatureSpec(key=f"bench.{run}.full", percentage_bp=10_000),
        # The one client-visible feature: client_flags evaluates it for a login.
        "client_visible": FeatureSpec(
            key=f"bench.{run}.client",
            client_visible=True,
            percentage_bp=5000,
            platforms=("ios",),
        ),
        "every_rule": FeatureSpec(
            key=f"bench.{run}.all",
            percentage_bp=5000,
            deny=(str(denied.pk),),
            platforms=("ios", "android"),
            datacenters=(here.datacenter,),
            campuses=(here.campus,),
            version_ranges=(
                VersionRangeSpec("7.0.0", "8.0.0"),
                VersionRangeSpec("8.0.0", "9.0.0"),
            ),
            time_windows=(TimeWindowSpec(now - dt.timedelta(days=1), now + dt.timedelta(days=1)),),
        ),
    }
    guarded = FeatureSpec(key=f"bench.{run}.guarded", percentage_bp=5000, guard=GuardSpec())
    for spec in (*specs.values(), guarded):
        feature_create(spec=spec, actor=None)
    subject = subject_for_ticket(ticket=ticket, user_id=ticket.user_id)

    def check(key: str) -> Callable[[], object]:
        return lambda: evaluate(key=key, subject=subject)

    results = {
        f"evaluate_{name}_us": per_call_us(check(spec.key), args.iterations)
        for name, spec in specs.items()
    }
    results["evaluate_unknown_key_us"] = per_call_us(
        lambda: evaluate(key="bench.no-such-feature", subject=subject), args.iterations
    )
    # bucket() hashes the salt too; checks use the seed compiled once per feature.
    results["bucket_with_salt_us"] = per_call_us(
        lambda: bucket(salt="0123456789abcdef", subject_id=123456), args.iterations
    )
    seed = salt_seed("0123456789abcdef")
    results["bucket_of_seed_us"] = per_call_us(lambda: bucket_of(seed, 123456), args.iterations)
    results["client_flags_us"] = per_call_us(
        lambda: client_flags(subject=subject), args.iterations // 10
    )
    results["subject_for_ticket_us"] = per_call_us(
        lambda: subject_for_ticket(ticket=ticket, user_id=ticket.user_id), 500
    )
    results.update(_outcomes(feature_outcome, evaluate, subject, guarded.key, specs, args))
    decision = evaluate(key=specs["every_rule"].key, subject=subject)
    emit(
        {
            "benchmark": "grayrelease",
            "iterations": args.iterations,
            "every_rule_decision": [decision.variant, str(decision.reason)],
            **{key: round(value, 3) for key, value in results.items()},
        }
    )


def _outcomes(
    feature_outcome: Callable[..., Any],
    evaluate: Callable[..., Any],
    subject: object,
    guarded_key: str,
    specs: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, float]:
    """A `with feature_outcome(...)` block around nothing, for a user whom the
    percentage decided (counted, when guarded) and one it did not."""
    from grayrelease.types import Decision, Reason

    treated = evaluate(key=guarded_key, subject=subject)
    if treated.reason not in (Reason.IN_ROLLOUT, Reason.OUT_OF_ROLLOUT):
        raise RuntimeError(f"the guarded feature should be decided by its percentage: {treated}")
    plain_key = specs["percentage_only"].key
    plain = evaluate(key=plain_key, subject=subject)

    def record(key: str, decision: Decision) -> Callable[[], None]:
        def block() -> None:
            with feature_outcome(key=key, decision=decision):
                pass

        return block

    return {
        "outcome_guarded_us": per_call_us(record(guarded_key, treated), args.iterations),
        "outcome_unguarded_us": per_call_us(record(plain_key, plain), args.iterations),
    }


if __name__ == "__main__":
    main()
