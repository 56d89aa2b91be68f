"""macaron-async against raw Celery, in one run, on a private redis-server.

1. Enqueue cost: ``task.fire(i)`` (context captured, arguments checked and
   encoded) against ``celery_task.apply_async((i,))`` of a plain Celery task on
   an app with the same settings. Interleaved rounds; medians. Target: <= 1.1x.
2. End to end: N no-op tasks sent while a real worker (prefork, 2 processes)
   runs them, from the first send to the last acknowledgement: `macaron worker`
   against `celery worker` on the plain app. Both workers run at once, batches
   interleaved; medians.

Run: python bench/async_bench.py [--quick]     (needs redis-server; about 25 s, 15 s with --quick)
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

TARGET = 1.1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise TimeoutError(f"{what} within {timeout} s")


@contextmanager
def process(
    command: list[str], log: Path, cwd: Path, ready: Callable[[], bool], what: str, wait: bool = True
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as stream:
        proc = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
        try:
            if wait:
                wait_for(lambda: ready() or proc.poll() is not None, 60, f"{what} did not start")
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}")
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


SPEC = """
swagger: '2.0'
info: {title: benchasync, version: '1'}
produces: [application/json]
paths:
  /noop:
    get:
      x-bind-server: benchasync.api.endpoint
      responses:
        200: {description: ok}
"""

HANDLERS = """
from macaron_async import asynctask


@asynctask
def noop(i):
    return None


def endpoint():
    noop(0)
"""

RAW_APP = """
from macaron_async.runtime import build_celery
from macaron_async.settings import AsyncSettings

# The same Celery settings as the macaron service, on a plain Celery app with a plain task.
app = build_celery(AsyncSettings(broker_url="{broker}", queue="raw-bench"), "raw")


@app.task(name="raw.noop")
def noop(i):
    return None
"""


def per_call(send: Callable[[int], object], count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        send(i)
    return (time.perf_counter() - start) / count


def drained(client: redis.Redis, queue: str) -> bool:
    # With late acknowledgement a message leaves "unacked" only once its task has run.
    return client.llen(queue) == 0 and client.hlen("unacked") == 0


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    calls, rounds, tasks, batches = (200, 5, 200, 3) if quick else (300, 9, 400, 5)
    server = shutil.which("redis-server")
    if server is None:
        print("redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 2
    macaron = Path(sys.executable).with_name("macaron")
    celery = Path(sys.executable).with_name("celery")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        port = free_port()
        broker = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis(port=port)
        redis_command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", scratch]
        with process(redis_command, folder / "redis.log", folder, lambda: pings(client), "redis-server"):
            service = folder / "service"
            (service / "apis").mkdir(parents=True)
            (service / "benchasync").mkdir()
            (service / "benchasync" / "__init__.py").write_text("")
            (service / "benchasync" / "api.py").write_text(textwrap.dedent(HANDLERS))
            (service / "apis" / "benchasync.yaml").write_text(SPEC)
            (service / "macaron.yaml").write_text(f"name: benchasync\nasync:\n  broker_url: {broker}\n")
            (folder / "rawapp.py").write_text(RAW_APP.format(broker=broker))

            from macaron import create_app

            create_app(service)
            sys.path.insert(0, scratch)
            import rawapp  # type: ignore[import-not-found]
            from benchasync.api import noop  # type: ignore[import-not-found]

            from macaron_async.runtime import runtime

            settings = runtime.settings
            assert settings is not None and runtime.celery is not None
            # 1. Enqueue cost, interleaved rounds so both see the same machine load.
            raw_send = rawapp.noop.apply_async
            fire = noop.fire
            raw_send((0,))
            fire(0)
            raw_times, fire_times = [], []
            for _ in range(rounds):
                raw_times.append(per_call(lambda i: raw_send((i,)), calls))
                fire_times.append(per_call(fire, calls))
                client.delete("raw-bench", "benchasync")
            raw_us, fire_us = statistics.median(raw_times) * 1e6, statistics.median(fire_times) * 1e6
            enqueue_ratio = fire_us / raw_us
            print(f"enqueue, {rounds} rounds x {calls} calls (median µs per call):")
            print(f"  raw Celery apply_async((i,))   {raw_us:8.1f} µs")
            print(f"  macaron_async  task.fire(i)    {fire_us:8.1f} µs   ratio {enqueue_ratio:.3f}x (target <= {TARGET}x)")

            # 2. End to end: both workers up at once (an idle one blocks on the broker), batches interleaved.
            workers = {
                "raw celery worker": (
                    [str(celery), "-A", "rawapp", "worker", "-c", "2", "-Q", "raw-bench", "-l", "WARNING", "--without-mingle", "--without-gossip"],
                    folder,
                    lambda i: raw_send((i,)),
                    "raw-bench",
                ),
                "macaron worker": ([str(macaron), "worker", str(service), "-c", "2", "-l", "warning"], service, fire, "benchasync"),
            }
            rates: dict[str, list[float]] = {name: [] for name in workers}
            with (
                process(workers["raw celery worker"][0], folder / "raw.log", folder, lambda: False, "raw celery worker", wait=False),
                process(workers["macaron worker"][0], folder / "macaron.log", service, lambda: False, "macaron worker", wait=False),
            ):
                wait_for(lambda: len(rawapp.app.control.ping(timeout=0.3)) >= 2, 60, "the workers did not answer a ping")
                for _ in range(batches):
                    for name, (_, _, send, queue) in workers.items():
                        start = time.perf_counter()
                        for i in range(tasks):
                            send(i)
                        wait_for(functools.partial(drained, client, queue), 120, f"{name} did not run {tasks} tasks")
                        rates[name].append(tasks / (time.perf_counter() - start))
            raw_rate, macaron_rate = statistics.median(rates["raw celery worker"]), statistics.median(rates["macaron worker"])
            print(f"end to end, {batches} batches x {tasks} no-op tasks sent while a worker (prefork, 2 processes) runs them (median tasks/s):")
            print(f"  raw celery worker              {raw_rate:8.0f} /s")
            print(f"  macaron worker                 {macaron_rate:8.0f} /s   ratio {raw_rate / macaron_rate:.3f}x time per task")
    return 0 if enqueue_ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
