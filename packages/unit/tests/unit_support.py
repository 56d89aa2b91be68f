"""Helpers of macaron-unit's tests: the fixture services, a clean environment, a pytest runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
HELLOWORLD = ROOT / "examples" / "helloworld"
BUGGY = HERE / "services" / "buggy"  # two seeded bugs: a crash on people=0, an undocumented 404
SAMPLE = HERE / "services" / "sample"  # correct; JWT auth, a redirect, an HTML page
# pytest plugins of macaron-unit's dependencies that the child runs do not use: importing them costs ~1.5 s each run.
NOT_NEEDED = ("-p", "no:schemathesis", "-p", "no:hypothesispytest")


def clean_environment(**extra: str) -> dict[str, str]:
    """The environment without MACARON_* variables, so a developer's settings cannot steer a test."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MACARON_")}
    environment.update(extra)
    return environment


def run_pytest(folder: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """pytest in a child process, in ``folder`` (its own rootdir), with macaron-unit's plugin loaded from its entry point."""
    if not (folder / "pytest.ini").exists():
        (folder / "pytest.ini").write_text("[pytest]\n")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *NOT_NEEDED, "-q", *args],
        cwd=folder,
        env=env if env is not None else clean_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def copy_service(source: Path, target: Path) -> Path:
    """A copy of a service folder without its tests, to break or to test from outside."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "testaccept", ".pytest_cache"))
    return target
