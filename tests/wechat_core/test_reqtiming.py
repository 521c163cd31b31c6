"""The benchmarks' per-request stage timings (REQUEST_TIMING_FILE,
wechat_core/reqtiming.py): a real server writes one line per request, its marks
in the order a request passes them, the client's X-Bench-Id beside them, and
nothing of the request's ticket or query string."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.processes import ServerProcess, start_asgi_server
from tests.factories import login_session, make_user
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def timing_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reqtiming") / "requests.jsonl"


@pytest.fixture(scope="module")
def timed_server(
    live_env: dict[str, str], live_log_dir: Path, timing_file: Path
) -> Iterator[ServerProcess]:
    env = {**live_env, "REQUEST_TIMING_FILE": str(timing_file), "ADMISSION_ENABLED": "true"}
    server = start_asgi_server(log_dir=live_log_dir, env=env, server="daphne", name="timed")
    yield server
    server.stop()


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def bench_record(path: Path, bench_id: str) -> dict[str, object] | None:
    found = [r for r in records(path) if r.get("id") == bench_id]
    return found[0] if found else None


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_timing__a_request__its_stages_in_order_with_its_id_and_no_secret(
    timed_server: ServerProcess, timing_file: Path
) -> None:
    session = login_session(make_user(email="timed@example.com"))
    # when: a client asks for its profile, naming the request
    headers = {**session.headers, "X-Bench-Id": "b42"}
    answer = httpx.get(f"{timed_server.url}/api/accounts/me?secret=q1", headers=headers, timeout=30)
    assert answer.status_code == 200
    # then: its line has every mark, in the order a request passes them
    record = eventually(lambda: bench_record(timing_file, "b42"), timeout=30, what="the line")
    assert (record["method"], record["path"], record["status"]) == ("GET", "/api/accounts/me", 200)
    marks = [float(str(record[k])) for k in ("arrived", "slot", "thread", "done", "sent")]
    assert marks == sorted(marks)
    assert int(str(record["queries"])) >= 1
    assert float(str(record["db_query"])) > 0
    # and: nothing of the ticket or the query string is in the file
    text = timing_file.read_text()
    assert session.token not in text
    assert session.token.split(".")[-1] not in text
    assert "q1" not in text
