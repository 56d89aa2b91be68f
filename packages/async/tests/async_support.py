"""Real brokers and workers for the macaron-async tests: redis-server, a private RabbitMQ node, `macaron worker`.

Every server listens on a free 127.0.0.1 port, in a temporary folder, and is
stopped by the process id it was started with.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
import yaml

from servers import executable, free_port

_names = itertools.count()


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} within {timeout} s")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Stop a process started in a session of its own, with everything it started."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@contextmanager
def redis_server(folder: Path) -> Iterator[int]:
    """A private redis-server on a free port, without persistence; yields the port."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (tests/system-packages.txt lists it: run `nox -s tests` or apt-get install redis-server)")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        client = redis.Redis(port=port)
        wait_until(lambda: _pings(client), 10, f"redis-server on port {port} did not answer")
        yield port
    finally:
        stop(process)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


RABBITMQ = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


def rabbitmq_missing() -> str | None:
    """Why a private RabbitMQ node cannot run here, or None when it can."""
    if not RABBITMQ.exists() and shutil.which("rabbitmq-server") is None:
        return "rabbitmq-server is not installed on this machine (Debian package rabbitmq-server)"
    return None


@contextmanager
def rabbitmq_server(folder: Path) -> Iterator[int]:
    """A private RabbitMQ node (own node name, ports, data folder, Erlang cookie, no plugins); yields its AMQP port."""
    binary = str(RABBITMQ) if RABBITMQ.exists() else shutil.which("rabbitmq-server")
    assert binary is not None
    port, dist_port = free_port(), free_port()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "enabled_plugins").write_text("[].\n")
    (folder / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{port}\nloopback_users = none\n")
    env = {
        **os.environ,
        "HOME": str(folder),  # its own Erlang cookie
        "RABBITMQ_NODENAME": f"macaron-test-{port}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
        "RABBITMQ_LOG_BASE": str(folder / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
        "RABBITMQ_PID_FILE": str(folder / "rabbitmq.pid"),
    }
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen([binary], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: _port_open(port) or process.poll() is not None, 60, f"RabbitMQ did not listen on {port}")
        if process.poll() is not None:
            raise RuntimeError(f"rabbitmq-server exited with {process.returncode}: {(folder / 'server.log').read_text()[-2000:]}")
        yield port
    finally:
        stop(process, timeout=20)
        log.close()


def write_service(root: Path, handlers: str, async_config: dict[str, Any], extra_config: dict[str, Any] | None = None) -> tuple[Path, str]:
    """A service folder with one spec (GET /run/{n} bound to ``<package>.api.run``) and the given handler module.

    Returns the folder and the service's unique package name (every service
    gets its own, as the test process imports several). The text ``PKG`` in
    ``handlers`` is replaced by that name.
    """
    package = f"asvc{os.getpid()}_{next(_names)}_{uuid.uuid4().hex[:6]}"
    root.mkdir(parents=True, exist_ok=True)
    (root / "apis").mkdir(exist_ok=True)
    (root / package).mkdir(exist_ok=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "api.py").write_text(textwrap.dedent(handlers).replace("PKG", package))
    config = {"name": package, "async": async_config, **(extra_config or {})}
    (root / "macaron.yaml").write_text(yaml.safe_dump(config))
    spec = {
        "swagger": "2.0",
        "info": {"title": package, "version": "1"},
        "produces": ["application/json"],
        "consumes": ["application/json"],
        "paths": {
            "/run/{n}": {
                "get": {
                    "x-bind-server": f"{package}.api.run",
                    "parameters": [{"name": "n", "in": "path", "required": True, "type": "integer"}],
                    "responses": {"200": {"description": "queued", "schema": {"$ref": "#/definitions/Item"}}},
                }
            }
        },
        "definitions": {
            "Item": {"type": "object", "properties": {"n": {"type": "integer"}, "name": {"type": "string"}}},
            "Basket": {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/definitions/Item"}}}},
        },
    }
    (root / "apis" / f"{package}.yaml").write_text(yaml.safe_dump(spec))
    return root, package


class Worker:
    """A `macaron worker` subprocess; its output goes to ``log``."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process = process
        self.log = log
        self.start = log.stat().st_size if log.exists() else 0

    def output(self) -> str:
        """What this worker wrote (the log may hold earlier workers' output)."""
        with self.log.open("rb") as stream:
            stream.seek(self.start)
            return stream.read().decode(errors="replace")

    def pool_pids(self) -> list[int]:
        """The pool processes of a prefork worker (children of the main process)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []


@contextmanager
def macaron_worker(service: Path, *options: str, log: Path, env: dict[str, str] | None = None, timeout: float = 30.0) -> Iterator[Worker]:
    """Start `macaron worker SERVICE --loglevel info OPTIONS...` and wait until it says it is ready."""
    stream = log.open("ab")
    start = log.stat().st_size
    process = subprocess.Popen(
        [executable("macaron"), "worker", str(service), "--loglevel", "info", *options],
        stdout=stream,
        stderr=subprocess.STDOUT,
        cwd=str(service),
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    worker = Worker(process, log)
    worker.start = start
    try:
        wait_until(
            lambda: " ready." in worker.output() or process.poll() is not None,
            timeout,
            f"macaron worker for {service} was not ready",
        )
        if process.poll() is not None:
            raise RuntimeError(f"macaron worker exited with {process.returncode}:\n{worker.output()[-3000:]}")
        yield worker
    finally:
        stop(process)
        stream.close()


@contextmanager
def macaron_beat(service: Path, *options: str, log: Path, timeout: float = 30.0) -> Iterator[Worker]:
    """Start `macaron beat SERVICE OPTIONS...` (in the service folder) and wait until it holds its lock and logged its tasks."""
    stream = log.open("ab")
    start = log.stat().st_size
    process = subprocess.Popen(
        [executable("macaron"), "beat", str(service), *options],
        stdout=stream,
        stderr=subprocess.STDOUT,
        cwd=str(service),
        start_new_session=True,
    )
    beat = Worker(process, log)
    beat.start = start
    try:
        wait_until(lambda: "beat of " in beat.output() or process.poll() is not None, timeout, f"macaron beat for {service} did not start")
        if process.poll() is not None:
            raise RuntimeError(f"macaron beat exited with {process.returncode}:\n{beat.output()[-3000:]}")
        yield beat
    finally:
        stop(process)
        stream.close()
