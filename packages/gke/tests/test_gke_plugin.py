"""macaron-gke registers its targets through its entry point, as a third party's plugin does."""

from __future__ import annotations

import subprocess
import sys

MACARON = [sys.executable, "-m", "macaron"]


def test_targets_are_listed() -> None:
    done = subprocess.run([*MACARON, "deploy", "--list"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "gke" in done.stdout and "cloudrun" in done.stdout


def test_gke_options_are_in_help() -> None:
    done = subprocess.run([*MACARON, "deploy", "gke", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "--rollback" in done.stdout and "--output" in done.stdout
