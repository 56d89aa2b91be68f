"""Acceptance tests: the service's ``testaccept/`` (pytest) run against a real server over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ACCEPTANCE_FOLDER = "testaccept"


class AcceptanceError(RuntimeError):
    """The acceptance tests cannot run (no testaccept/ folder)."""


def acceptance_folder(service: Path) -> Path:
    folder = service / ACCEPTANCE_FOLDER
    if not folder.is_dir():
        raise AcceptanceError(f"{folder}: no such folder (put the service's black-box tests there, one file per endpoint)")
    return folder


def run_acceptance(service: Path, url: str, *, env: str | None = None, token: str | None = None, pytest_args: Sequence[str] = ()) -> int:
    """Run pytest over ``service/testaccept`` against ``url``; return pytest's exit status.

    pytest runs in a child process with ``MACARON_TEST_URL`` set, so the fixtures of
    macaron-unit's plugin target ``url`` and start no server of their own.
    """
    folder = acceptance_folder(service)
    environment = {**os.environ, "MACARON_TEST_URL": url, "MACARON_SERVICE": str(service.resolve())}
    if env:
        environment["MACARON_ENV"] = env
    if token:
        environment["MACARON_TEST_TOKEN"] = token
    command = [sys.executable, "-m", "pytest", str(folder.resolve()), "-p", "no:cacheprovider", *pytest_args]
    return subprocess.call(command, env=environment, cwd=str(service))
