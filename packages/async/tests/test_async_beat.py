"""Periodic tasks through real processes: redis-server, `macaron worker`, `macaron beat` (and `macaron worker --beat`)."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from async_support import Worker, macaron_beat, macaron_worker, stop, wait_until, write_service

from macaron_cli import run_macaron

HANDLERS = """
import json, os, time
import redis
from macaron.context import get_request_id, get_userid
from macaron_async import asynctask, current_task

store = redis.Redis(port=REDIS_PORT, db=1)


def note(key, **fields):
    task = current_task()
    store.rpush(key, json.dumps({
        "at": time.time(), "request_id": get_request_id(), "user_id": get_userid(), "pid": os.getpid(),
        "attempt": task.attempt if task else None, **fields,
    }))


@asynctask(every=1)
def heartbeat():
    note("heartbeat")


@asynctask
def sync(source, full=False):
    note("sync", args=[source, full])


@asynctask(retries=1, backoff=0.1, jitter=False)
def cleanup(days):
    note("cleanup", days=days)
    raise RuntimeError(f"cannot clean up {days} days")


def reporter(report):
    store.rpush("reports", json.dumps(report, default=str))


def run(n):
    return None
"""

LOCK_TIMEOUT = 3


@dataclass
class Service:
    root: Path
    package: str
    folder: Path
    store: redis.Redis  # db 1: what the tasks write
    broker: redis.Redis  # db 0: the broker, where the beat lock lives
    worker: Worker

    @property
    def lock_key(self) -> str:
        return f"macaron:beat:{self.package}"

    def runs(self, key: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.store.lrange(key, 0, -1)]

    def lock_holder(self) -> str | None:
        value = self.broker.get(self.lock_key)
        return value.decode() if value is not None else None


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, redis_port: int) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("beat")
    async_config = {
        "broker_url": f"redis://127.0.0.1:{redis_port}/0",
        "beat_lock_timeout": LOCK_TIMEOUT,
        "beat_state_dir": "state",  # relative: under the service folder
        "schedule": [
            {"task": "PKG.api.sync", "every": 1, "args": ["crm"], "kwargs": {"full": True}},
            {"task": "PKG.api.cleanup", "name": "nightly-cleanup", "every": 2, "args": [30]},
        ],
    }
    root, package = write_service(folder / "service", HANDLERS.replace("REDIS_PORT", str(redis_port)), {})
    config = yaml.safe_load((root / "macaron.yaml").read_text())
    config["async"] = json.loads(json.dumps(async_config).replace("PKG", package))
    config["error_reporter"] = f"{package}.api.reporter"
    (root / "macaron.yaml").write_text(yaml.safe_dump(config))
    store, broker = redis.Redis(port=redis_port, db=1), redis.Redis(port=redis_port, db=0)
    store.flushdb()
    with macaron_worker(root, "--concurrency", "2", log=folder / "worker.log") as worker:
        yield Service(root, package, folder, store, broker, worker)
    broker.flushdb()


def _wait_for_runs(service: Service, key: str, count: int, since: int = 0, timeout: float = 15.0) -> list[dict[str, Any]]:
    wait_until(lambda: service.store.llen(key) >= since + count, timeout, f"{count} scheduled run(s) of {key}")
    return service.runs(key)[since:]


def test_beat_sends_periodic_tasks_with_their_fixed_arguments_to_the_workers(service: Service) -> None:
    with macaron_beat(service.root, log=service.folder / "beat.log") as beat:
        heartbeats = _wait_for_runs(service, "heartbeat", 3)
        syncs = _wait_for_runs(service, "sync", 3)
        assert f"pid {beat.process.pid} " in (service.lock_holder() or "")
        summary = beat.output()
    pool = set(service.worker.pool_pids())
    for name, runs in ((f"{service.package}.api.heartbeat", heartbeats), (f"{service.package}.api.sync", syncs)):
        # Every run is a task of its own, run by the worker, with a context naming the entry and the time it was sent.
        assert {run["pid"] for run in runs} <= pool
        assert all(run["user_id"] is None for run in runs)
        assert all(re.fullmatch(rf"beat-{re.escape(name)}-\d{{8}}T\d{{6}}Z", run["request_id"]) for run in runs), runs
        assert len({run["request_id"] for run in runs}) == len(runs)
        assert runs[2]["at"] - runs[0]["at"] >= 1.5  # repeatedly, a second apart, not all at once
    assert all(run["args"] == ["crm", True] for run in syncs)
    assert f"beat of {service.package}: 3 periodic task(s), times in UTC; state in {service.root / 'state' / service.package}.beat" in summary
    assert f"nightly-cleanup: {service.package}.api.cleanup(30) every 2 s (from async.schedule[1])" in summary
    # Beat's state is in the configured folder, never in the folder it was started from.
    assert list((service.root / "state").glob(f"{service.package}.beat*"))
    assert not list(service.root.glob("celerybeat-schedule*"))


def test_a_failing_periodic_task_is_retried_and_reported_like_any_task(service: Service) -> None:
    service.store.delete("reports")
    with macaron_beat(service.root, log=service.folder / "beat.log"):
        wait_until(lambda: service.store.llen("reports") >= 1, 15, "no crash report of the scheduled clean-up")
    report = json.loads(service.store.lindex("reports", 0) or b"{}")
    assert report["title"] == f"task {service.package}.api.cleanup failed: RuntimeError: cannot clean up 30 days"
    assert re.fullmatch(r"beat-nightly-cleanup-\d{8}T\d{6}Z", report["request"]["id"])
    assert report["data"]["attempt"] == 2  # retried once, as the task declares, before the report
    attempts = [run for run in service.runs("cleanup") if run["request_id"] == report["request"]["id"]]
    assert [run["attempt"] for run in attempts] == [1, 2]


def _beat_refused(service: Service) -> subprocess.CompletedProcess[str]:
    result = run_macaron("beat", str(service.root))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_a_second_beat_is_refused_while_the_first_runs_and_starts_once_it_stopped(service: Service) -> None:
    with macaron_beat(service.root, log=service.folder / "beat.log") as first:
        refused = _beat_refused(service)
        assert (
            f"another beat already runs for the service {service.package}: {socket.gethostname()} pid {first.process.pid} since "
            in refused.stderr
        )
        assert f"holds the lock {service.lock_key}. Only one beat may run per service" in refused.stderr
        assert f"if it died, its lock expires within {LOCK_TIMEOUT} s" in refused.stderr
        assert f"pid {first.process.pid} " in (service.lock_holder() or "")  # the refused beat left the lock alone
    assert service.lock_holder() is None  # released when the first stopped
    with macaron_beat(service.root, log=service.folder / "beat.log") as second:
        assert f"pid {second.process.pid} " in (service.lock_holder() or "")
        since = service.store.llen("heartbeat")
        _wait_for_runs(service, "heartbeat", 1, since)


def test_the_lock_of_a_killed_beat_expires_and_lets_another_start(service: Service) -> None:
    with macaron_beat(service.root, log=service.folder / "beat.log") as dead:
        stop(dead.process, signal.SIGKILL)
        assert f"pid {dead.process.pid} " in (service.lock_holder() or "")  # nobody released it
        wait_until(lambda: service.lock_holder() is None, LOCK_TIMEOUT + 2, "the dead beat's lock did not expire")
    with macaron_beat(service.root, log=service.folder / "beat.log") as successor:
        assert f"pid {successor.process.pid} " in (service.lock_holder() or "")


def test_a_beat_that_lost_its_lock_to_another_stops_and_leaves_the_lock_alone(service: Service) -> None:
    intruder = "elsewhere pid 1 since 2026-11-22 03:00:00 UTC (0badbeat)"
    try:
        with macaron_beat(service.root, log=service.folder / "beat.log") as beat:
            service.broker.set(service.lock_key, intruder, ex=60)  # as if this beat had been paused past its lock's expiry
            wait_until(lambda: beat.process.poll() is not None, 10, "the beat kept running without its lock")
            assert beat.process.returncode == 1
            output = beat.output()
        assert f"beat: another beat took the lock {service.lock_key}: {intruder}; this beat stops so that no task runs twice" in output
        assert f"Error: beat stopped: another beat took the lock {service.lock_key}" in output
        assert service.lock_holder() == intruder  # not this beat's to release
    finally:
        service.broker.delete(service.lock_key)


def test_worker_with_beat_runs_the_periodic_tasks_itself_and_releases_the_lock(service: Service, tmp_path: Path) -> None:
    since = service.store.llen("heartbeat")
    with macaron_worker(service.root, "--beat", "--concurrency", "1", log=tmp_path / "dev.log") as dev:
        runs = _wait_for_runs(service, "heartbeat", 2, since)
        assert f"pid {dev.process.pid} " in (service.lock_holder() or "")  # so a `macaron beat` would be refused
    assert all(run["request_id"].startswith(f"beat-{service.package}.api.heartbeat-") for run in runs)
    assert service.lock_holder() is None  # the embedded beat stopped cleanly with its worker
