"""Containers in tests: a private podman storage, and the registry-free base image, shared by every test module.

This machine's runtime quirks (runc, the ulimits its VM allows) are set through CONTAINERS_CONF, as an
operator would, never in macaron.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

MACARON = [sys.executable, "-m", "macaron"]


@contextmanager
def private_storage(folder: Path) -> Iterator[Path]:
    """podman (and buildah) with a storage in ``folder`` for the block, emptied afterwards."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: tests/system-packages.txt should have installed it")
    (folder / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{folder}/storage"\nrunroot = "{folder}/run"\n', encoding="utf-8"
    )
    # The engine's run-time folder and locks private too: podman's defaults (/run/libpod, shared memory locks) are
    # shared by every storage, and another test run's `podman system reset` there breaks this one's containers.
    (folder / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
        f'[engine]\nruntime = "runc"\ntmp_dir = "{folder}/tmp"\nlock_type = "file"\n',
        encoding="utf-8",
    )
    saved = {name: os.environ.get(name) for name in ("CONTAINERS_STORAGE_CONF", "CONTAINERS_CONF")}
    os.environ["CONTAINERS_STORAGE_CONF"] = str(folder / "storage.conf")
    os.environ["CONTAINERS_CONF"] = str(folder / "containers.conf")
    try:
        yield folder
    finally:
        subprocess.run(["podman", "rm", "-af"], capture_output=True, check=False)
        subprocess.run(["podman", "system", "reset", "-f"], capture_output=True, check=False)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def registry_free_base() -> str:
    """``macaron image base --json``: built once per machine (cached), imported into the current storage."""
    done = subprocess.run([*MACARON, "image", "base", "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    image = str(json.loads(done.stdout)["image"])
    assert image.startswith("localhost/macaron-base:")
    return image


def git(root: Path, *args: str, date: str = "2026-11-02T10:00:00+00:00") -> str:
    environment = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    command = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True, env=environment).stdout


IMAGED = Path(__file__).resolve().parents[1] / "fixtures" / "imaged"


def deployable_imaged(root: Path, base: str, deploy: dict[str, object]) -> Path:
    """tests/fixtures/imaged at ``root``, a git repository with ``deploy`` as its deploy section, built once.

    Its contract tests ask for short requests only (the gate need not wait for long ones); the first build writes
    the lock, which is committed, as the build asks.
    """
    import yaml

    shutil.copytree(IMAGED, root, ignore=shutil.ignore_patterns("__pycache__"))
    spec = root / "apis" / "imaged.yaml"
    spec.write_text(spec.read_text().replace("maximum: 5", "maximum: 0.2"))
    config = yaml.safe_load((root / "macaron.yaml").read_text())
    config["image"] = {"base": base}
    config["deploy"] = deploy
    (root / "macaron.yaml").write_text(yaml.safe_dump(config))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "imaged")
    done = subprocess.run([*MACARON, "image", "build", str(root), "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "lock")
    return root
