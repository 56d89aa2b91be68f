"""Issue 17, end to end: `macaron test --contract` against a bookstore served by a real `macaron serve`.

The bookstore's spec declares its own `Error` (status, error, error_description, error_id,
user_message: no request_id, no errors list). macaron's error bodies (every 400 the contract
run provokes, 401s, 404s...) must obey it, so the run blames only handlers that are wrong:
none in the bookstore as written, exactly the two broken ones in a copy.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from unit_support import HERE, copy_service

from macaron_cli import run_macaron
from servers import executable, free_port, stop_process, wait_for_http

BOOKSTORE = HERE / "services" / "bookstore"

# What makes two handlers wrong: one returns a field Book lacks, the other raises on input the spec allows.
BREAKAGE = '''

def broken() -> Any:
    return {**BOOKS[1], "colour": "red"}


def crash(n: int | None) -> Any:
    return {"count": len(BOOKS) / n}  # n=0 is allowed
'''


@contextmanager
def served(service: Path) -> Iterator[str]:
    """``macaron serve`` on a free port, its output in the service folder's parent."""
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MACARON_")}
    with (service.parent / f"{service.name}-serve.log").open("wb") as log:
        process = subprocess.Popen([executable("macaron"), "serve", str(service), "--port", str(port)], env=environment, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/ping", timeout=60, process=process)
        yield url
    finally:
        stop_process(process)


def contract(service: Path, url: str) -> subprocess.CompletedProcess[str]:
    return run_macaron("test", "--contract", str(service), "--url", url, timeout=300)


def failed_operations(out: str) -> list[str]:
    return sorted(re.findall(r"^\s*FAIL  (.+?)  \[", out, flags=re.MULTILINE))


def test_a_correct_bookstore_keeps_its_contract(tmp_path: Path) -> None:
    service = copy_service(BOOKSTORE, tmp_path / "bookstore")
    with served(service) as url:
        # The bodies macaron writes follow the spec's Error; the request id is in the header.
        missing = requests.get(f"{url}/v1/books/99", timeout=5)
        assert missing.status_code == 404
        assert set(missing.json()) == {"status", "error", "error_description", "error_id", "user_message"}
        assert missing.headers["X-Request-ID"]
        invalid = requests.get(f"{url}/v1/books?limit=0", timeout=5)
        assert invalid.status_code == 400 and set(invalid.json()) == {"status", "error", "error_description", "error_id"}
        assert "/query/limit" in invalid.json()["error_description"]
        result = contract(service, url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert failed_operations(result.stdout) == []
    assert " 0 failed, 0 skipped" in result.stdout
    for operation in ("GET /v1/books (listBooks)", "POST /v1/books (addBook)", "GET /v1/books/{book_id} (getBook)", "GET /v1/broken (broken)", "GET /v1/crash (crash)"):
        assert f"PASS  {operation}" in result.stdout


def test_two_broken_handlers_are_named_and_no_other_operation(tmp_path: Path) -> None:
    service = copy_service(BOOKSTORE, tmp_path / "bookstore")
    handlers = service / "bookstore" / "api.py"
    handlers.write_text(handlers.read_text() + BREAKAGE)
    with served(service) as url:
        result = contract(service, url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert failed_operations(result.stdout) == ["GET /v1/broken (broken)", "GET /v1/crash (crash)"], result.stdout
    assert " 2 failed" in result.stdout
