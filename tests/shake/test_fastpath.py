"""POST /api/shake before Django (shake/fastpath.py): a client cannot tell it from
Django's answer. The same requests go to two live servers, one with the fast path
and one without (SHAKE_FAST_PATH off), and get the same status, headers (but the
date) and body; the fast one is shown to have answered the plain shakes itself,
and both count every request in their metrics."""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from accounts.models import RevocationReason
from accounts.tickets import tickets_revoke
from devtools.processes import ServerProcess, spawn_asgi_server, stop_all, wait_until_healthy
from tests.factories import Session, login_session, make_user
from tests.shake.conftest import approved_round
from tests.support.waiting import eventually

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

METRICS_TOKEN = "fastpath-metrics-5d2e"
# Set per answer by the server software, not by the application.
_PER_ANSWER = {"date"}


@dataclass
class Pair:
    fast: ServerProcess
    django: ServerProcess

    @property
    def both(self) -> tuple[ServerProcess, ServerProcess]:
        return self.fast, self.django


@pytest.fixture(scope="module")
def pair(live_env: dict[str, str], live_log_dir: Path) -> Iterator[Pair]:
    registry = f"shake-fast-{uuid.uuid4().hex[:8]}"  # one: each its own slot and slice

    def env(fast: bool) -> dict[str, str]:
        return live_env | {
            "SHAKE_ENGINE_THREAD": "true",
            "SHAKE_REGISTRY": registry,
            "SHAKE_FAST_PATH": "true" if fast else "false",
            "MONITORING_METRICS_TOKEN": METRICS_TOKEN,
            # Each its own metrics: /metrics sums the processes sharing a directory.
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="fastpath-metrics-"),
            # As in production: the answers carry what admission adds.
            "ADMISSION_ENABLED": "true",
        }

    servers = [
        spawn_asgi_server(log_dir=live_log_dir, env=env(True), name="shake-fast"),
        spawn_asgi_server(log_dir=live_log_dir, env=env(False), name="shake-django"),
    ]
    for server in servers:
        wait_until_healthy(server)
    yield Pair(*servers)
    stop_all(servers)


def _post(server: ServerProcess, content: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/shake",
        content=content,
        headers={"Content-Type": "application/json", **headers},
        timeout=30,
    )


def _shake(server: ServerProcess, session: Session, **body: Any) -> httpx.Response:
    return _post(server, json.dumps(body).encode(), session.headers)


def _headers(response: httpx.Response, *, but: set[str] = _PER_ANSWER) -> list[tuple[str, str]]:
    """The headers in order; CSP's directives sorted: django-csp writes them in an order
    of its process (a set's), the same for every answer of one process only."""
    return [
        (k, "; ".join(sorted(v.split("; "))) if k == "content-security-policy" else v)
        for k, v in response.headers.multi_items()
        if k not in but
    ]


def _metric(server: ServerProcess, name: str, **labels: str) -> float:
    text = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30
    ).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _answered_fast(pair: Pair) -> float:
    return _metric(pair.fast, "shake_fast_path_requests_total", answered_by="fast")


def _ready(pair: Pair, session: Session) -> None:
    """Each server has verified the session's ticket and written its device's "last
    seen" (the schedule, not a shake), and the fast one has seen Django answer two
    shakes (of another user) for these request headers, so the fast path now answers
    this session's plain shakes."""
    warm = login_session(make_user(nickname="Warm-up"))
    for server in pair.both:
        assert httpx.get(f"{server.url}/api/shake/schedule", headers=session.headers).is_success
    before = _answered_fast(pair)
    eventually(
        lambda: _shake(pair.fast, warm).is_success and _answered_fast(pair) > before,
        timeout=60,
        what="the fast path answering",
    )


def _same(fast: httpx.Response, django: httpx.Response) -> None:
    assert (fast.status_code, _headers(fast), fast.content) == (
        django.status_code,
        _headers(django),
        django.content,
    )


def _scheduled(server: ServerProcess, session: Session) -> int | None:
    """The round a server's schedule shows (no shake)."""
    answer = httpx.get(f"{server.url}/api/shake/schedule", headers=session.headers).json()
    return None if answer["schedule"] is None else int(answer["schedule"]["round"])


def _both_schedule(pair: Pair, session: Session, round_id: int | None) -> None:
    for server in pair.both:

        def shown(server: ServerProcess = server) -> bool:
            return _scheduled(server, session) == round_id

        eventually(shown, timeout=60, what=f"round {round_id} in the schedule")


def test_shake__nothing_won__the_same_answer_as_django_s(pair: Pair) -> None:
    # given: no round near (a shake wins nothing)
    session = login_session(make_user(nickname="Early"))
    _ready(pair, session)
    _both_schedule(pair, session, None)  # (a round of an earlier test dropped)
    before = _answered_fast(pair)
    # when: the same shake to each
    fast, django = _shake(pair.fast, session), _shake(pair.django, session)
    # then: the same status, headers and bytes, and the fast path gave it
    assert fast.json()["result"] == "nothing"
    _same(fast, django)
    assert _answered_fast(pair) == before + 1
    # and: the same headers as its own process's Django (a query string goes there), in
    # the same order to the byte
    own = httpx.post(
        f"{pair.fast.url}/api/shake?from=django",
        content=b"{}",
        headers={"Content-Type": "application/json", **session.headers},
    )
    assert _answered_fast(pair) == before + 1
    assert (fast.status_code, fast.headers.raw[:-1], fast.content) == (
        own.status_code,
        own.headers.raw[:-1],
        own.content,
    )


def _shape(value: Any) -> Any:
    """The keys in order, all the way down, with the values' types."""
    if isinstance(value, dict):
        return [(key, _shape(item)) for key, item in value.items()]
    return type(value).__name__


def test_shake__a_win__django_s_answer_but_for_the_packet_drawn(pair: Pair) -> None:
    # given: a round issuing now, with more than enough packets
    round_ = approved_round(per_user_cap=10, per_sponsor_cap=10)
    session = login_session(make_user(nickname="Lucky"))
    _ready(pair, session)
    _both_schedule(pair, session, round_.pk)
    probe = login_session(make_user(nickname="Probe"))
    for server in pair.both:  # its first packets reserved (the engine's thread)

        def issuing(server: ServerProcess = server) -> bool:
            return _shake(server, probe).json()["packet"] is not None

        eventually(issuing, timeout=60, what="packets issued")
    before = _answered_fast(pair)
    # when: the same shake to each (each draws a packet of its own slice)
    fast, django = _shake(pair.fast, session), _shake(pair.django, session)
    # then: both won, in answers alike in everything but the packet and the record
    assert _answered_fast(pair) == before + 1
    but = _PER_ANSWER | {"content-length"}
    assert (fast.status_code, _headers(fast, but=but)) == (
        django.status_code,
        _headers(django, but=but),
    )
    length = [(k, v) for k, v in _headers(fast) if k == "content-length"]
    assert length == [("content-length", str(len(fast.content)))]
    won, expected = fast.json(), django.json()
    assert won["result"] == expected["result"] == "packet"
    assert _shape(won) == _shape(expected)
    for answer in (won, expected):
        answer["record"] = answer["packet"]["id"] = answer["packet"]["signature"] = None
        for name in ("amount", "sponsor"):  # the slices' first prizes may differ here
            answer["packet"][name] = None
    assert won == expected
    # and: the bytes are DRF's compact rendering, in the same order
    compact = json.dumps(fast.json(), separators=(",", ":"), ensure_ascii=False).encode()
    assert fast.content == compact


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"record": ', id="bad JSON"),
        pytest.param(b'{"record": 5}', id="wrong shape"),
        pytest.param(b'{"record": "  padded  ", "schedule": ""}', id="blank"),
        pytest.param(b"[]", id="not an object"),
        pytest.param(b'{"record": null}' + b" " * 70_000, id="oversized"),
    ],
)
def test_shake__bad_input__django_s_error(pair: Pair, content: bytes) -> None:
    session = login_session(make_user(nickname="Clumsy"))
    _ready(pair, session)
    fast, django = (_post(server, content, session.headers) for server in pair.both)
    assert fast.status_code in {400, 413}
    _same(fast, django)


def test_shake__no_or_unknown_ticket__django_s_refusal(pair: Pair) -> None:
    session = login_session(make_user(nickname="Stranger"))
    _ready(pair, session)
    unknown = {"Authorization": "Ticket t1.999999999." + "x" * 43}
    for headers in ({}, unknown, {"Authorization": "Basic abc"}):
        fast, django = (_post(server, b"{}", headers) for server in pair.both)
        assert fast.status_code in {401, 403}
        _same(fast, django)


def test_shake__ticket_revoked_while_cached__refused_as_django_does(pair: Pair) -> None:
    # given: a ticket each server verified and holds
    session = login_session(make_user(nickname="Leaver"))
    _ready(pair, session)
    assert _shake(pair.fast, session).is_success
    # when: it is revoked (another process: every server drops its copy within a poll)
    tickets_revoke(ticket_ids=[session.ticket.ticket_id], reason=RevocationReason.LOGOUT)
    # then: both refuse it, the same way
    for server in pair.both:

        def refused(server: ServerProcess = server) -> bool:
            return _shake(server, session).status_code == 401

        eventually(refused, timeout=30, what="the revocation seen")
    _same(_shake(pair.fast, session), _shake(pair.django, session))


def test_shake__counted_in_http_metrics_alike(pair: Pair) -> None:
    session = login_session(make_user(nickname="Counted"))
    _ready(pair, session)
    labels = {"route": "api/shake", "method": "POST", "outcome": "2xx"}
    before = [_metric(server, "http_requests_total", **labels) for server in pair.both]
    fast_before = _answered_fast(pair)
    for _ in range(3):
        for server in pair.both:
            assert _shake(server, session).is_success
    after = [_metric(server, "http_requests_total", **labels) for server in pair.both]
    assert [a - b for a, b in zip(after, before, strict=True)] == [3, 3]
    assert _answered_fast(pair) == fast_before + 3
    timed = [
        _metric(server, "http_request_duration_seconds_count", route="api/shake")
        for server in pair.both
    ]
    assert all(count >= 3 for count in timed)


def test_shake__cookie_or_query__left_to_django(pair: Pair) -> None:
    session = login_session(make_user(nickname="Browser"))
    _ready(pair, session)
    before = _answered_fast(pair)
    with_cookie = session.headers | {"Cookie": "sessionid=abc"}
    fast = _post(pair.fast, b"{}", with_cookie)
    django = _post(pair.django, b"{}", with_cookie)
    assert fast.status_code == django.status_code == 200
    assert _answered_fast(pair) == before
