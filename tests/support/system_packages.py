"""Install from Debian's packages the programs the tests need and this machine lacks (listed in tests/system-packages.txt)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

LIST = Path(__file__).parents[1] / "system-packages.txt"


def missing() -> list[str]:
    packages = []
    for line in LIST.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        program, package = line.split()
        if shutil.which(program) is None and not Path(program).exists():
            packages.append(package)
    return sorted(set(packages))


def main() -> int:
    packages = missing()
    if not packages:
        return 0
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print(f"tests need Debian packages {' '.join(packages)}: install them (tests using them will be skipped)", file=sys.stderr)
        return 0
    # apt prints hundreds of dpkg lines: they go to a log, and the test run's output keeps one line (or the log's end on failure).
    log = Path(tempfile.gettempdir()) / "macaron-system-packages.log"
    print(f"installing {' '.join(packages)} from Debian's packages (apt's output: {log})", file=sys.stderr, flush=True)
    with log.open("w") as output:
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]):
            done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
            if done.returncode != 0:
                tail = log.read_text(errors="replace").splitlines()[-30:]
                print(f"{' '.join(command[:2])} failed (exit {done.returncode}); the end of {log}:", *tail, sep="\n", file=sys.stderr)
                return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
