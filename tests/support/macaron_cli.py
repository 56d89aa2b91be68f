"""Run the real ``macaron`` command, and make real (fake-named) plugin distributions for it to find."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Mapping
from pathlib import Path

from servers import executable


def run_macaron(
    *args: str,
    env: Mapping[str, str] | None = None,
    path: list[Path] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``macaron ARGS`` in a subprocess, with no MACARON_* variable but those given.

    ``path`` goes on PYTHONPATH, so distributions made by :func:`make_distribution`
    are found through importlib.metadata like installed ones.
    """
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MACARON_") and key != "PYTHONPATH"}
    if path:
        environment["PYTHONPATH"] = os.pathsep.join(str(p) for p in path)
    environment.update(env or {})
    return subprocess.run([executable("macaron"), *args], env=environment, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def make_distribution(folder: Path, distribution: str, plugin: str, source: str, version: str = "0.1.0") -> Path:
    """A plugin distribution laid out as pip installs it (package + ``*.dist-info``) under ``folder``.

    ``source`` becomes the module ``<package>.plugin`` named by the entry point
    ``plugin`` of group ``macaron``. Returns ``folder``, to put on PYTHONPATH.
    """
    package = distribution.replace("-", "_")
    (folder / package).mkdir(parents=True)
    (folder / package / "__init__.py").write_text("")
    (folder / package / "plugin.py").write_text(textwrap.dedent(source))
    info = folder / f"{package}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[macaron]\n{plugin} = {package}.plugin\n")
    return folder
