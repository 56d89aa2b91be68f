"""Serve a macaron service under real gunicorn on a free 127.0.0.1 port, for tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import requests

CONFIG_FILES = ("macaron.yaml", "pym-config.yaml")


class ServerStartError(RuntimeError):
    """The service did not come up; the message holds the end of its log."""


def is_service(folder: Path) -> bool:
    return any((folder / name).is_file() for name in CONFIG_FILES)


def find_service(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds a macaron.yaml."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if is_service(folder):
            return folder
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceServer:
    """gunicorn serving ``macaron.wsgi:app`` for one service folder; a context manager.

    The server's output goes to a log file; :meth:`log_since` reads what it wrote after
    an offset, so a failing test can show the server's traceback.
    """

    def __init__(
        self,
        service: str | os.PathLike[str],
        env: str | None = None,
        *,
        workers: int = 1,
        threads: int = 4,
        environ: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.service = Path(service).resolve()
        self.env = env
        self.workers = workers
        self.threads = threads
        self.environ = dict(environ or {})
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._logdir: str | None = None

    @property
    def log_path(self) -> Path | None:
        return Path(self._logdir) / "server.log" if self._logdir else None

    def __enter__(self) -> ServiceServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> str:
        """Start gunicorn and wait until ``/ping`` answers; return the base URL."""
        if not is_service(self.service):
            raise ServerStartError(f"{self.service}: not a macaron service (no macaron.yaml)")
        self._logdir = tempfile.mkdtemp(prefix="macaron-unit-")
        # The port is free when chosen but may be taken before gunicorn binds it: try again on another.
        for _attempt in range(3):
            port = free_port()
            self._spawn(port)
            try:
                self._wait_until_up()
                return self.url
            except ServerStartError:
                if "Address already in use" not in self.log_since(0):
                    self.stop()
                    raise
                self._terminate()
        self.stop()
        raise ServerStartError(f"{self.service}: no free port found for gunicorn")

    def _spawn(self, port: int) -> None:
        environment = {**os.environ, **self.environ, "MACARON_SERVICE": str(self.service)}
        if self.env:
            environment["MACARON_ENV"] = self.env
        command = [
            sys.executable, "-m", "gunicorn",
            "--bind", f"127.0.0.1:{port}",
            "--workers", str(self.workers),
            "--worker-class", "gthread",
            "--threads", str(self.threads),
            "--graceful-timeout", "5",
            "--log-level", "warning",
            "macaron.wsgi:app",
        ]  # fmt: skip
        assert self.log_path is not None
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=environment, cwd=str(self.service), stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"

    def _wait_until_up(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"gunicorn serving {self.service} exited with status {self.process.returncode} before answering:\n{self.log_tail()}"
                )
            try:
                requests.get(self.url + "/ping", timeout=2)
                return
            except (requests.ConnectionError, requests.Timeout):  # gunicorn listens before its worker has loaded the app
                time.sleep(0.05)
        raise ServerStartError(f"gunicorn serving {self.service} did not answer {self.url}/ping within {self.startup_timeout:g} s:\n{self.log_tail()}")

    def log_size(self) -> int:
        path = self.log_path
        return path.stat().st_size if path is not None and path.exists() else 0

    def log_since(self, offset: int) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return ""
        with path.open("rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", "replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_since(0).splitlines()[-lines:])

    def _terminate(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # SIGINT is gunicorn's quick shutdown: a test server need not drain keep-alive connections.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        self._terminate()
        if self._logdir is not None:
            shutil.rmtree(self._logdir, ignore_errors=True)
            self._logdir = None
