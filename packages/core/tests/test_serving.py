"""Serving for real: examples/helloworld under gunicorn over HTTP, and the macaron command."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from macaron_cli import run_macaron
from servers import executable, free_port, gunicorn_service, stop_process, wait_for_http

ROOT = Path(__file__).resolve().parents[3]
HELLOWORLD = ROOT / "examples" / "helloworld"


@pytest.fixture(scope="module")
def helloworld() -> Iterator[str]:
    with gunicorn_service(HELLOWORLD) as url:
        yield url


def test_helloworld_path_query_and_header_parameters(helloworld: str) -> None:
    response = requests.get(f"{helloworld}/v1/hello/Ann", params={"lang": "en,fr", "times": "2"}, headers={"x-caller": "tests"}, timeout=5)
    assert response.status_code == 200, response.text
    assert response.json() == {"greetings": ["Hello, Ann!", "Bonjour, Ann!", "Hello, Ann!", "Bonjour, Ann!"], "caller": "tests"}
    assert requests.get(f"{helloworld}/v1/hello/Ann", timeout=5).json() == {"greetings": ["Hello, Ann!"], "caller": None}


def test_helloworld_rejects_bad_parameters_all_at_once(helloworld: str) -> None:
    response = requests.get(f"{helloworld}/v1/hello/Ann", params={"lang": "en,de", "times": "9"}, timeout=5)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "INVALID_PARAMETER"
    assert {problem["field"] for problem in body["errors"]} == {"/query/lang/1", "/query/times"}


def test_helloworld_body_as_model_with_x_parent_and_custom_error(helloworld: str) -> None:
    response = requests.post(f"{helloworld}/v1/questions", json={"text": "Is it raining?", "tags": ["weather"]}, timeout=5)
    assert response.status_code == 201, response.text
    assert response.json() == {"text": "Yes.", "question": {"text": "Is it raining?", "tags": ["weather"]}}
    response = requests.post(f"{helloworld}/v1/questions", json={"text": "Really?!"}, timeout=5)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "RHETORICAL_QUESTION"
    assert body["user_message"] == "That one needs no answer."
    response = requests.post(f"{helloworld}/v1/questions", json={"text": "", "asked_at": "noon"}, timeout=5)
    assert response.status_code == 400
    assert {problem["field"] for problem in response.json()["errors"]} == {"/body/text", "/body/asked_at"}


def test_helloworld_upload(helloworld: str) -> None:
    response = requests.post(
        f"{helloworld}/v1/upload",
        data={"caption": "a note"},
        files={"file": ("note.txt", b"twelve bytes", "text/plain")},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"caption": "a note", "filename": "note.txt", "content_type": "text/plain", "size": 12}


def test_helloworld_builtins_and_errors(helloworld: str) -> None:
    assert requests.get(f"{helloworld}/ping", timeout=5).json() == {}
    version = requests.get(f"{helloworld}/version", timeout=5).json()
    assert version["name"] == "helloworld" and "helloworld" in version["apis"]
    response = requests.get(f"{helloworld}/nope", timeout=5)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == "NOT_FOUND"
    response = requests.post(f"{helloworld}/v1/questions", data="{", headers={"Content-Type": "application/json"}, timeout=5)
    assert (response.status_code, response.json()["error"]) == (400, "MALFORMED_JSON")


def serve(*args: str, service: Path = HELLOWORLD) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MACARON_")}
    process = subprocess.Popen(
        [executable("macaron"), "serve", str(service), "--port", str(port), *args],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return process, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "args",
    [("--prod", "--workers", "1"), ("--prod", "--workers", "1", "--server", "gunicorn"), ()],
    ids=["prod-granian", "prod-gunicorn", "dev"],
)
def test_macaron_serve(args: tuple[str, ...]) -> None:
    process, url = serve(*args)
    try:
        wait_for_http(url + "/ping", process=process)
        assert requests.get(url + "/ping", timeout=5).json() == {}
        assert requests.get(url + "/v1/hello/Bo", timeout=5).json() == {"greetings": ["Hello, Bo!"], "caller": None}
    finally:
        stop_process(process)


def workers(master: int) -> set[int]:
    return {int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()}


@pytest.mark.parametrize("max_requests", [0, 5], ids=["no-recycling", "recycled"])
def test_macaron_serve_prod_recycles_a_worker_only_when_asked(max_requests: int) -> None:
    process, url = serve("--prod", "--server", "gunicorn", "--workers", "1", "--threads", "1", "--max-requests", str(max_requests))
    try:
        wait_for_http(url + "/ping", process=process)
        before = workers(process.pid)
        for _ in range(12):
            assert requests.get(url + "/v1/hello/Bo", timeout=5).status_code == 200
        deadline = time.monotonic() + 10
        while max_requests and workers(process.pid) in (before, set()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (workers(process.pid) == before) == (max_requests == 0)
    finally:
        stop_process(process)


def test_macaron_validate(tmp_path: Path) -> None:
    result = run_macaron("validate", str(HELLOWORLD))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    broken = tmp_path / "broken"
    (broken / "apis").mkdir(parents=True)
    (broken / "macaron.yaml").write_text("name: broken\n")
    (broken / "apis" / "shop.yaml").write_text(
        "swagger: '2.0'\ninfo: {title: shop, version: '1'}\npaths:\n  /items:\n    get:\n      operationId: listItems\n"
        "      x-bind-server: shop_missing.list_items\n      responses: {200: {description: ok}}\n"
    )
    result = run_macaron("validate", str(broken))
    assert result.returncode != 0
    assert "shop.yaml" in result.stderr
    assert "listItems" in result.stderr
    assert "shop_missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_macaron_routes() -> None:
    result = run_macaron("routes", str(HELLOWORLD))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:4] == ["GET", "/v1/hello/{name}", "sayHello", "helloworld.api.say_hello"] for line in lines), result.stdout
    assert any(line.split()[:2] == ["POST", "/v1/questions"] for line in lines)
    assert any(line.split()[:2] == ["GET", "/ping"] for line in lines)


def test_macaron_validate_thorough_runs_swagger_spec_validator_too() -> None:
    result = run_macaron("validate", "--thorough", str(HELLOWORLD))
    assert result.returncode == 0, result.stderr
    assert "all bound. OK" in result.stdout


def _answer(url: str) -> tuple[int, dict[str, object]] | None:
    try:
        response = requests.get(url, timeout=2)
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError):  # between two reloads (one may cut an answer short)
        return None
    return response.status_code, response.json()


def _wait_for(url: str, predicate: Any, timeout: float = 30.0) -> tuple[int, dict[str, object]]:
    deadline = time.monotonic() + timeout
    answer = None
    while time.monotonic() < deadline:
        answer = _answer(url)
        if answer is not None and predicate(answer):
            return answer
        time.sleep(0.2)
    raise TimeoutError(f"{url}: last answer {answer}")


def test_macaron_serve_debug_reloads_on_spec_changes_and_shows_a_broken_spec_until_it_is_fixed(tmp_path: Path) -> None:
    service = tmp_path / "helloworld"
    shutil.copytree(HELLOWORLD, service, ignore=shutil.ignore_patterns("__pycache__"))
    spec = service / "apis" / "helloworld.yaml"
    original = spec.read_text()
    log = tmp_path / "server.log"
    port = free_port()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MACARON_")}
    process = subprocess.Popen(
        [executable("macaron"), "serve", str(service), "--debug", "--port", str(port)],
        env=environment,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the reloader's child too
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            _wait_for(f"{url}/v1/hello/Bo", lambda answer: answer[0] == 200)
            spec.write_text(original.replace("x-bind-server: helloworld.api.say_hello", "x-bind-server: helloworld.api.say_goodbye"))
            status, body = _wait_for(f"{url}/ping", lambda answer: answer[0] == 503)
            assert body["error"] == "SERVICE_NOT_STARTED"
            assert "helloworld.yaml" in str(body["error_description"]) and "say_goodbye" in str(body["error_description"])
            spec.write_text(original.replace("maxLength: 40", "maxLength: 2"))  # fixed, and the name limit is now 2
            status, body = _wait_for(f"{url}/v1/hello/Bob", lambda answer: answer[0] != 503)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; the server said:\n{log.read_text()[-3000:]}") from exc
        assert (status, body["error"]) == (400, "INVALID_PARAMETER"), body
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


# -- serve --prod under each production server ----------------------------------------

SERVERS = ["granian", "gunicorn"]
SLOW_SPEC = """\
swagger: '2.0'
info: {title: slow, version: '1'}
produces: [application/json]
paths:
  /slow:
    get:
      operationId: slow
      x-bind-server: slowpoke.api.slow
      parameters:
        - {name: seconds, in: query, type: number, minimum: 0, maximum: 30, default: 0}
      responses:
        200: {description: ok, schema: {type: object, properties: {slept: {type: number}}}}
"""


@pytest.fixture
def slow_service(tmp_path: Path) -> Path:
    """A service whose one operation sleeps as long as asked: an in-flight request on demand."""
    root = tmp_path / "slow"
    (root / "apis").mkdir(parents=True)
    (root / "slowpoke").mkdir()
    (root / "macaron.yaml").write_text("name: slow\n")
    (root / "apis" / "slow.yaml").write_text(SLOW_SPEC)
    (root / "slowpoke" / "__init__.py").write_text("")
    (root / "slowpoke" / "api.py").write_text("import time\n\n\ndef slow(seconds):\n    time.sleep(seconds)\n    return {'slept': seconds}\n")
    return root


def wait_for_workers(master: int, count: int, timeout: float = 20, other_than: set[int] = frozenset()) -> set[int]:  # type: ignore[assignment]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = workers(master)
        if len(found - other_than) >= count:
            return found
        time.sleep(0.05)
    raise TimeoutError(f"{count} worker(s) of {master} did not start within {timeout} s (have {workers(master)})")


@pytest.mark.parametrize("server", SERVERS)
def test_serve_prod_finishes_an_in_flight_request_on_sigterm(server: str, slow_service: Path) -> None:
    process, url = serve("--prod", "--server", server, "--workers", "1", service=slow_service)
    try:
        wait_for_http(url + "/slow", process=process)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(requests.get, url + "/slow", params={"seconds": "2"}, timeout=20)
            time.sleep(0.7)  # the request is in the handler
            process.send_signal(signal.SIGTERM)
            response = pending.result()
        assert (response.status_code, response.json()) == (200, {"slept": 2})
        assert process.wait(timeout=25) == 0
    finally:
        stop_process(process)


@pytest.mark.parametrize("server", SERVERS)
def test_serve_prod_replaces_a_worker_that_dies(server: str, slow_service: Path) -> None:
    process, url = serve("--prod", "--server", server, "--workers", "2", service=slow_service)
    try:
        wait_for_http(url + "/slow", process=process)
        before = wait_for_workers(process.pid, 2)
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        after = wait_for_workers(process.pid, 2, other_than={victim})
        assert victim not in after and len(after) == 2
        for _ in range(6):  # both workers answer, the new one included
            assert requests.get(url + "/slow", timeout=10).json() == {"slept": 0}
        assert process.poll() is None
    finally:
        stop_process(process)


@pytest.mark.parametrize("server", SERVERS)
def test_serve_prod_takes_its_settings_from_the_config_and_says_what_it_runs(server: str, slow_service: Path) -> None:
    config = slow_service / "macaron.yaml"
    config.write_text(f"name: slow\nserve: {{server: {server}, workers: 1, threads: 2}}\n")
    process, url = serve("--prod", service=slow_service)
    try:
        wait_for_http(url + "/slow", process=process)
        assert len(workers(process.pid)) == 1
    finally:
        stop_process(process)
    assert process.stderr is not None
    assert f"({server}, 1 worker(s) x 2 threads)" in process.stderr.read().decode()


@pytest.mark.parametrize("server", SERVERS)
def test_serve_prod_of_a_broken_service_prints_the_one_line_of_validate(server: str, slow_service: Path) -> None:
    spec = slow_service / "apis" / "slow.yaml"
    spec.write_text(spec.read_text().replace("slowpoke.api.slow", "slowpoke.api.missing"))
    expected = run_macaron("validate", str(slow_service)).stderr.strip()
    assert "slowpoke.api.missing" in expected and len(expected.splitlines()) == 1
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MACARON_")}
    result = subprocess.run(
        [executable("macaron"), "serve", str(slow_service), "--prod", "--server", server, "--port", str(free_port())],
        env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == expected


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("serve: {server: uwsgi}", "'serve.server' must be one of granian, gunicorn, not 'uwsgi'"),
        ("serve: {workers: 0}", "'serve.workers' must be an integer >= 1, not 0"),
        ("serve: {wokers: 2}", "unknown key 'serve.wokers'"),
        ("serve: {max_requests: 100}", "max_requests is gunicorn's"),
        ("serve: {timeout: 60}", "timeout is gunicorn's"),
    ],
)
def test_serve_prod_refuses_a_bad_serve_section_in_one_line(config: str, message: str, slow_service: Path) -> None:
    (slow_service / "macaron.yaml").write_text(f"name: slow\n{config}\n")
    result = run_macaron("serve", str(slow_service), "--prod", "--port", str(free_port()))
    assert result.returncode == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
