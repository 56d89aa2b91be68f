"""examples/tasks: an endpoint queues a task that a separate worker runs as the caller, under the caller's request id."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from async_support import Worker, macaron_worker, wait_until

from servers import gunicorn_service

EXAMPLE = Path(__file__).parents[3] / "examples" / "tasks"


@pytest.fixture(scope="module")
def running(redis_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Worker, str]]:
    secret = secrets.token_hex(32)
    env = {"REPORTS_JWT_SECRET": secret, "REPORTS_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
    log = tmp_path_factory.mktemp("example") / "worker.log"
    with macaron_worker(EXAMPLE, "--concurrency", "1", env=env, log=log) as worker, gunicorn_service(EXAMPLE, env) as url:
        yield url, worker, secret


def _auth(secret: str, user: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + jwt.encode({"sub": user, "exp": int(time.time()) + 600}, secret, "HS256")}


def _report(url: str, task_id: str, headers: dict[str, str]) -> Any:
    state: dict[str, Any] = {}

    def built() -> bool:
        state.update(requests.get(f"{url}/v1/reports/{task_id}", headers=headers, timeout=5).json())
        return state.get("status") != "PENDING"

    wait_until(built, 20, f"report {task_id} was not built", interval=0.1)
    return state


def test_the_worker_builds_the_report_as_the_caller_under_the_callers_request_id(running: tuple[str, Worker, str]) -> None:
    url, worker, secret = running
    alice = _auth(secret, "alice")
    response = requests.post(
        f"{url}/v1/reports", json={"title": "Q3 sales", "pages": 2}, headers={**alice, "X-Request-ID": "req-q3-sales"}, timeout=5
    )
    assert response.status_code == 202, response.text
    ticket = response.json()
    assert ticket["request_id"] == "req-q3-sales"
    state = _report(url, ticket["task_id"], alice)
    assert state["status"] == "SUCCESS"
    report = state["report"]
    assert (report["title"], report["pages"]) == ("Q3 sales", 2)
    assert report["built_for"] == "alice"
    assert report["request_id"] == "req-q3-sales"
    line = next(line for line in worker.output().splitlines() if "building 'Q3 sales'" in line)
    assert "[req-q3-sales alice]" in line

    # Another user cannot read alice's report; nobody can queue one without a token.
    bob = requests.get(f"{url}/v1/reports/{ticket['task_id']}", headers=_auth(secret, "bob"), timeout=5)
    assert bob.status_code == 404 and bob.json()["error"] == "NOT_FOUND"
    anonymous = requests.post(f"{url}/v1/reports", json={"title": "x"}, timeout=5)
    assert anonymous.status_code == 401


def test_a_request_the_spec_rejects_queues_nothing(running: tuple[str, Worker, str]) -> None:
    url, worker, secret = running
    response = requests.post(f"{url}/v1/reports", json={"title": "", "pages": 99}, headers=_auth(secret, "carol"), timeout=5)
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"/body/title", "/body/pages"}
    time.sleep(0.3)
    assert "carol" not in worker.output()
