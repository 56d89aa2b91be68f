"""At-least-once delivery: workers are SIGKILLed in the middle of tasks, and no task is lost."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import redis
from async_support import macaron_worker, stop, wait_until, write_service

from macaron import create_app, service_of
from macaron_async.runtime import runtime
from macaron_async.settings import settings_from_config

HANDLERS = """
import os, time
import redis
from macaron_async import asynctask

store = redis.Redis(port=REDIS_PORT, db=1)


@asynctask
def slow(i, seconds):
    store.sadd("started", i)
    store.hset("started_by", i, os.getpid())
    time.sleep(seconds)
    store.hincrby("runs", i, 1)
    store.sadd("done", i)


def run(n):
    slow(n, 0.1)
"""

VISIBILITY_TIMEOUT = 2.0


@pytest.fixture
def service(tmp_path: Path, redis_port: int) -> Iterator[tuple[Path, ModuleType, redis.Redis]]:
    store = redis.Redis(port=redis_port, db=1)
    store.flushdb()
    async_config = {
        "broker_url": f"redis://127.0.0.1:{redis_port}/0",
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "restore_interval": 0.5,
    }
    root, package = write_service(tmp_path / "service", HANDLERS.replace("REDIS_PORT", str(redis_port)), async_config)
    app = create_app(root)
    runtime.configure(settings_from_config(service_of(app).config), app, package)
    yield root, __import__(f"{package}.api", fromlist=["api"]), store
    redis.Redis(port=redis_port, db=0).flushdb()


def _broker_state(broker: redis.Redis) -> str:
    """What the Redis broker holds, for a failure message: queued, delivered but unacknowledged, the sweep's lock."""
    mutex = broker.ttl("unacked_mutex")
    queued = sum(broker.llen(key) for key in broker.keys() if broker.type(key) == b"list")
    return f"queued {queued}, unacknowledged {broker.hlen('unacked')}, sweep lock ttl {mutex}"


def _done(store: redis.Redis) -> set[int]:
    return {int(i) for i in store.smembers("done")}


def test_tasks_of_a_sigkilled_worker_all_run_once_another_worker_starts(service: tuple[Path, ModuleType, redis.Redis], tmp_path: Path) -> None:
    root, handlers, store = service
    broker = redis.Redis(port=store.connection_pool.connection_kwargs["port"], db=0)
    count = 16
    for i in range(count):
        handlers.slow.fire(i, 0.4)
    with macaron_worker(root, "--concurrency", "2", log=tmp_path / "first.log") as first:
        wait_until(lambda: len(_done(store)) >= 3, 20, "the first worker did not finish 3 tasks")
        wait_until(lambda: len({int(i) for i in store.smembers("started")} - _done(store)) >= 1, 5, "no task was running")
        stop(first.process, signal.SIGKILL)  # the whole worker, pool processes included, with tasks half done
    killed_with = len(_done(store))
    interrupted = {int(i) for i in store.smembers("started")} - _done(store)
    assert killed_with < count and interrupted, "the kill must land in the middle of the work"

    # The worst moment for a kill: during a sweep for dead workers' tasks, which leaves the sweep's lock held.
    lock_expiry = runtime.ensure_configured().sweep_lock_expiry
    broker.set("unacked_mutex", "held by the killed worker", ex=lock_expiry)
    killed_at = time.monotonic()
    with macaron_worker(root, "--concurrency", "2", log=tmp_path / "second.log") as second:
        try:
            wait_until(lambda: len(_done(store)) == count, 30, "every task done")
        except TimeoutError as error:
            raise AssertionError(f"tasks lost: {sorted(set(range(count)) - _done(store))}; {_broker_state(broker)}\n{second.output()[-3000:]}") from error
        # The interrupted tasks came back only once their visibility timeout and the dead sweep's lock had expired.
        assert time.monotonic() - killed_at >= max(VISIBILITY_TIMEOUT, lock_expiry) - 0.1
    runs = {int(i): int(n) for i, n in store.hgetall("runs").items()}
    assert set(runs) == set(range(count))
    assert all(n >= 1 for n in runs.values())


def test_a_killed_pool_process_gives_its_task_back_at_once(service: tuple[Path, ModuleType, redis.Redis], tmp_path: Path) -> None:
    root, handlers, store = service
    with macaron_worker(root, "--concurrency", "1", log=tmp_path / "worker.log") as worker:
        handlers.slow.fire(1, 1.0)
        wait_until(lambda: store.hget("started_by", 1) is not None, 15, "the task did not start")
        victim = int(store.hget("started_by", 1) or 0)
        assert victim in worker.pool_pids()
        store.hdel("started_by", 1)
        os.kill(victim, signal.SIGKILL)
        # task_reject_on_worker_lost: the main process puts the task back, a new pool process runs it.
        wait_until(lambda: _done(store) == {1}, 15, "the task of the killed pool process was lost")
        assert int(store.hget("started_by", 1) or 0) not in (0, victim)
        assert "WorkerLostError" in worker.output() or "exited" in worker.output()
