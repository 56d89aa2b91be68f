"""Install from Debian's packages the programs the tests need and this machine lacks (listed in tests/system-packages.txt)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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
    print(f"installing {' '.join(packages)} from Debian's packages", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
