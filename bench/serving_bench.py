"""Served over HTTP: `macaron serve --prod` against FastAPI (uvicorn[standard]) and bare Flask, same run, same workers.

The service is a bookstore (bench/bookstore: Swagger 2.0, GET /v1/books?limit=10 returning a BookList,
POST /v1/books with a nested Book validated in and out, 201), written three times:
  macaron      `macaron serve bench/bookstore --prod --workers N` (granian, the default server)
  macaron-gunicorn   the same with `--server gunicorn`
  fastapi      bench/bookstore_fastapi.py: pydantic models mirroring the spec, `async def`, uvicorn --workers N
  flask        bench/bookstore_flask.py: bare Flask under granian's WSGI interface, no validation
Every stack is started at once, then interleaved rounds of `wrk -t2 -c64 -dDs` go stack by stack; each
figure is the median of the rounds. With --soak S, S seconds at 64 connections against macaron (GET and POST
alternating), counting errors, with each worker's RSS after start-up, before the soak and after it.

Needs wrk (Debian: apt-get install wrk) and the dev requirements (fastapi, uvicorn[standard]).
Run: python bench/serving_bench.py [--rounds 3] [--duration 6] [--workers 2] [--soak 60] [--stacks macaron,fastapi]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
BOOK = {"title": "A New Book", "isbn": "9781234567897", "price": 12.5, "tags": ["new", "fiction"], "author": {"name": "Ann Writer", "country": "SE"}}
POST_LUA = f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{json.dumps(BOOK)}'
"""
# The soak alternates the two requests on every connection.
SOAK_LUA = f"""
local n = 0
local body = '{json.dumps(BOOK)}'
request = function()
  n = n + 1
  if n % 2 == 0 then
    return wrk.format("POST", "/v1/books", {{["Content-Type"] = "application/json"}}, body)
  end
  return wrk.format("GET", "/v1/books?limit=10")
end
"""
CASES = {"GET": "/v1/books?limit=10", "POST": "/v1/books"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tool(name: str) -> str:
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def commands(workers: int) -> dict[str, list[str]]:
    """name -> command line with {port} to fill in."""
    macaron = [tool("macaron"), "serve", str(HERE / "bookstore"), "--prod", "--workers", str(workers), "--port", "{port}"]
    return {
        "macaron": macaron,
        "macaron-gunicorn": [*macaron, "--server", "gunicorn"],
        "fastapi": [
            tool("uvicorn"), "bookstore_fastapi:app", "--workers", str(workers), "--port", "{port}",
            "--no-access-log", "--log-level", "warning",
        ],
        "flask": [
            tool("granian"), "--interface", "wsgi", "--workers", str(workers), "--blocking-threads", "1",
            "--port", "{port}", "--log-level", "warning", "--no-ws", "bookstore_flask:app",
        ],
    }  # fmt: skip


@dataclass
class Stack:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    startup_rss: dict[int, float] = field(default_factory=dict)
    startup_pss: dict[int, float] = field(default_factory=dict)
    results: dict[str, list[tuple[float, float, float, int]]] = field(default_factory=dict)


def workers_of(pid: int) -> list[int]:
    """Every descendant of pid that is a Python process serving requests (the leaves of the process tree)."""
    found: list[int] = []
    try:
        children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return found
    for child in children:
        if b"resource_tracker" in Path(f"/proc/{child}/cmdline").read_bytes():  # multiprocessing's helper, not a worker
            continue
        below = workers_of(child)
        found.extend(below or [child])
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pss_mb(pid: int) -> float:
    """Proportional set size: the pages a forked worker shares with its parent counted as a share, not in full."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start(name: str, command: list[str]) -> Stack:
    port = free_port()
    process = subprocess.Popen(
        [part.replace("{port}", str(port)) for part in command], cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return Stack(name, process, f"http://127.0.0.1:{port}")


def wait_ready(stack: Stack, workers: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            raise RuntimeError(f"{stack.name} exited with status {stack.process.returncode}")
        try:
            with urllib.request.urlopen(stack.url + CASES["GET"], timeout=2) as response:
                if response.status == 200 and len(workers_of(stack.process.pid)) >= workers:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{stack.name} did not answer within {timeout} s")


def check_answers(stack: Stack) -> None:
    with urllib.request.urlopen(stack.url + CASES["GET"], timeout=5) as response:
        assert len(json.loads(response.read())["books"]) == 10, stack.name
    request = urllib.request.Request(stack.url + CASES["POST"], data=json.dumps(BOOK).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201 and json.loads(response.read())["id"] >= 1, stack.name


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, duration: int, script: Path | None, connections: int = 64) -> tuple[float, float, float, int]:
    """requests/s, p50 ms, p99 ms, errors (socket errors and non-2xx answers)."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", *(["-s", str(script)] if script else []), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p50, p99, errors + (int(non_2xx.group(1)) if non_2xx else 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--soak", type=int, default=0, help="seconds of soak against macaron after the rounds (0: none)")
    parser.add_argument("--stacks", default="macaron,fastapi,flask,macaron-gunicorn")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 2
    if shutil.which("wrk") is None:
        print("serving_bench: skipped, wrk is not installed (Debian: apt-get install wrk)")
        return 0
    known = commands(args.workers)
    names = [name for name in args.stacks.split(",") if name]
    missing = [name for name in names if name not in known]
    if missing:
        parser.error(f"unknown stacks {missing}; known: {', '.join(known)}")
    print(f"load average before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        post_script = Path(tmp, "post.lua")
        post_script.write_text(POST_LUA)
        soak_script = Path(tmp, "soak.lua")
        soak_script.write_text(SOAK_LUA)
        stacks = [start(name, known[name]) for name in names]
        try:
            for stack in stacks:
                wait_ready(stack, args.workers)
                stack.startup_rss = {pid: rss_mb(pid) for pid in workers_of(stack.process.pid)}
                stack.startup_pss = {pid: pss_mb(pid) for pid in workers_of(stack.process.pid)}
                check_answers(stack)
            for stack in stacks:  # warm-up: imports on first use, caches, connection set-up
                for case, path in CASES.items():
                    wrk(stack.url + path, 1, post_script if case == "POST" else None)
            for round_ in range(args.rounds):
                for case, path in CASES.items():
                    for stack in stacks if round_ % 2 == 0 else stacks[::-1]:
                        result = wrk(stack.url + path, args.duration, post_script if case == "POST" else None)
                        stack.results.setdefault(case, []).append(result)
                        print(f"round {round_ + 1} {case:4} {stack.name:17} {result[0]:9.0f} req/s  p50 {result[1]:6.2f} ms  p99 {result[2]:6.2f} ms  errors {result[3]}", flush=True)
            report(stacks)
            if args.soak:
                soak(next((s for s in stacks if s.name == "macaron"), stacks[0]), args.soak, soak_script)
        finally:
            for stack in stacks:
                stack.process.terminate()
            for stack in stacks:
                try:
                    stack.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    stack.process.kill()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


def report(stacks: list[Stack]) -> None:
    base = next((s for s in stacks if s.name == "fastapi"), None)
    print("\n| stack | GET req/s | GET p50 / p99 ms | POST req/s | POST p50 / p99 ms | GET / FastAPI | POST / FastAPI | RSS (PSS) per worker after start-up |")
    print("|---|---|---|---|---|---|---|---|")
    medians = {s.name: {case: [statistics.median(r[i] for r in s.results[case]) for i in range(3)] for case in CASES} for s in stacks}
    for stack in stacks:
        m = medians[stack.name]
        ratios = [f"{m[case][0] / medians[base.name][case][0]:.2f}" if base else "-" for case in CASES]
        rss = ", ".join(f"{stack.startup_rss[pid]:.0f} ({stack.startup_pss[pid]:.0f})" for pid in sorted(stack.startup_rss))
        print(
            f"| {stack.name} | {m['GET'][0]:,.0f} | {m['GET'][1]:.2f} / {m['GET'][2]:.2f} | {m['POST'][0]:,.0f} | "
            f"{m['POST'][1]:.2f} / {m['POST'][2]:.2f} | {ratios[0]} | {ratios[1]} | {rss} MB |"
        )
    errors = {s.name: sum(r[3] for case in CASES for r in s.results[case]) for s in stacks}
    print(f"errors in the rounds: {errors}\n", flush=True)


def soak(stack: Stack, seconds: int, script: Path) -> None:
    before = {pid: rss_mb(pid) for pid in workers_of(stack.process.pid)}
    rps, p50, p99, errors = wrk(stack.url, seconds, script)
    after = {pid: rss_mb(pid) for pid in workers_of(stack.process.pid)}
    replaced = sorted(set(before) ^ set(after))
    print(f"soak {stack.name}: {seconds} s at 64 connections, GET and POST alternating: {rps:,.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, errors {errors}")
    for pid in sorted(before):
        start_up = stack.startup_rss.get(pid, float("nan"))
        print(f"  worker {pid}: RSS {start_up:.1f} MB after start-up, {before[pid]:.1f} MB before the soak, {after.get(pid, float('nan')):.1f} MB after it")
    if replaced:
        print(f"  workers replaced during the soak: {replaced}")


if __name__ == "__main__":
    sys.exit(main())
