"""Run every benchmark of the monorepo whose package is installed; each prints its ratios against its baseline."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
# benchmark script -> import it needs
BENCHMARKS = {
    "engine_bench.py": "macaron",
    "async_bench.py": "macaron_async",
    "dynamodb_bench.py": "macaron_dynamodb",
    "serving_bench.py": "fastapi",  # over HTTP with wrk; also needs uvicorn (requirements-dev.txt)
}


def main() -> int:
    status = 0
    for script, module in BENCHMARKS.items():
        if not (HERE / script).exists():
            continue
        if importlib.util.find_spec(module) is None:
            print(f"== {script}: skipped, {module} is not installed")
            continue
        print(f"== {script}", flush=True)
        status |= subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]]).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
