"""``async: {mode: inprocess}``: no broker, no worker; tasks run in the web process after the response is sent."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
import requests
from async_support import wait_until, write_service

from macaron import create_app, service_of
from macaron.context import CallContext, use
from macaron_async import drain
from servers import gunicorn_service

HANDLERS = """
import json, os, threading, time
from pathlib import Path
from macaron import apis
from macaron.context import get_request_id, get_userid
from macaron_async import asynctask, current_task

OUTBOX = Path("OUTBOX_PATH")


class Flaky(Exception):
    pass


def write(key, **values):
    task = current_task()
    values.update(user_id=get_userid(), request_id=get_request_id(), pid=os.getpid(),
                  thread=threading.current_thread().name, attempt=task.attempt if task else None)
    # Written aside, then renamed: the test sees the whole file or none.
    (OUTBOX / f"{key}.tmp").write_text(json.dumps(values))
    os.replace(OUTBOX / f"{key}.tmp", OUTBOX / f"{key}.json")


@asynctask
def slow_note(key, item, seconds):
    time.sleep(seconds)
    write(key, item=[type(item).__name__, item.n])


@asynctask(retries=2, retry_for=(Flaky,), backoff=0.05, jitter=False)
def flaky(key, failures):
    attempts = OUTBOX / f"{key}.attempts"
    attempt = len(attempts.read_text()) + 1 if attempts.exists() else 1
    attempts.write_text("x" * attempt)
    if attempt <= failures:
        raise Flaky(f"attempt {attempt}")
    write(key)


@asynctask
def crash(key):
    raise ValueError(f"cannot do {key}")


def reporter(report):
    with (OUTBOX / "reports.jsonl").open("a") as stream:
        stream.write(json.dumps(report, default=str) + "\\n")


def run(n):
    slow_note(f"endpoint-{n}", apis.PKG.Item(n=n), 2.0)
    return apis.PKG.Item(n=n)
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("inprocess")
    outbox = folder / "outbox"
    outbox.mkdir()
    root, package = write_service(folder / "service", HANDLERS.replace("OUTBOX_PATH", str(outbox)), {"mode": "inprocess"})
    (root / "macaron.yaml").write_text((root / "macaron.yaml").read_text() + f"error_reporter: {package}.api.reporter\n")
    return root, outbox


def test_the_endpoint_answers_before_the_task_runs_in_the_web_process(service: tuple[Path, Path]) -> None:
    root, outbox = service
    with gunicorn_service(root) as url:
        started = time.monotonic()
        response = requests.get(f"{url}/run/7", headers={"X-Request-ID": "req-inprocess-7"}, timeout=10)
        elapsed = time.monotonic() - started
        assert response.status_code == 200 and response.json() == {"n": 7}
        assert elapsed < 1.8, f"the response waited for the 2 s task ({elapsed:.2f} s)"
        assert not (outbox / "endpoint-7.json").exists()
        wait_until(lambda: (outbox / "endpoint-7.json").exists(), 10, "the in-process task did not run")
    seen = json.loads((outbox / "endpoint-7.json").read_text())
    assert seen["request_id"] == "req-inprocess-7"
    assert seen["item"] == ["Item", 7]
    assert seen["thread"] == "macaron-async-inprocess"
    assert seen["pid"] != os.getpid()  # the gunicorn worker, with no broker and no celery worker anywhere


def test_the_mode_is_logged_once_at_start_up(service: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    root, _ = service
    with caplog.at_level(logging.INFO, logger="macaron.async"):
        create_app(root)
    lines = [r.getMessage() for r in caplog.records if r.name == "macaron.async"]
    assert lines == ["async: mode inprocess: tasks run in this web process after each response is sent (no broker, no worker; for development)"]


def test_fire_outside_a_request_runs_in_the_background_with_retries(service: tuple[Path, Path]) -> None:
    root, outbox = service
    app = create_app(root)
    handlers = __import__(service_of(app).config["name"] + ".api", fromlist=["api"])
    with use(CallContext(request_id="req-bg", user_id="user-bg")):
        assert handlers.flaky.fire("bg", 2) is None
    assert drain(10)
    seen = json.loads((outbox / "bg.json").read_text())
    assert (seen["user_id"], seen["request_id"], seen["attempt"]) == ("user-bg", "req-bg", 3)
    assert seen["thread"] == "macaron-async-inprocess"


def test_a_failing_in_process_task_is_reported(service: tuple[Path, Path]) -> None:
    root, outbox = service
    app = create_app(root)
    handlers = __import__(service_of(app).config["name"] + ".api", fromlist=["api"])
    with use(CallContext(request_id="req-oops", user_id="user-oops")):
        handlers.crash.fire("the laundry")
    assert drain(10)
    reports = [json.loads(line) for line in (outbox / "reports.jsonl").read_text().splitlines()]
    report = next(r for r in reports if "the laundry" in r["title"])
    assert report["title"].endswith("crash failed: ValueError: cannot do the laundry")
    assert (report["request"]["id"], report["user"]["id"]) == ("req-oops", "user-oops")
