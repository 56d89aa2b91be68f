"""Real servers for tests, on free 127.0.0.1 ports, stopped when the test is done."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_http(url: str, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode} before answering {url}")
        try:
            requests.get(url, timeout=1)
            return
        except (requests.ConnectionError, requests.Timeout):  # a busy machine: the worker is still booting
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Ask a server started by a test to stop, then insist."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def executable(name: str) -> str:
    """A console script of the running virtualenv, else from PATH."""
    candidate = Path(sys.executable).with_name(name)
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed")
    return found


@contextmanager
def gunicorn_service(service: Path | str, env: Mapping[str, str] | None = None, workers: int = 1, output: Path | None = None) -> Iterator[str]:
    """Serve a macaron service under real gunicorn on a free port; yield its base URL.

    ``output``: a file that receives the server's stdout and stderr (else they are the test's).
    """
    port = free_port()
    environment = {**os.environ, "MACARON_SERVICE": str(service), **(env or {})}
    sink = output.open("ab") if output is not None else None
    process = subprocess.Popen(
        [executable("gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning", "macaron.wsgi:app"],
        env=environment,
        cwd=str(service),
        stdout=sink,
        stderr=subprocess.STDOUT if sink is not None else None,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/ping", process=process)
        yield url
    finally:
        stop_process(process)
        if sink is not None:
            sink.close()
