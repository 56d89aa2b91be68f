"""``macaron migrate`` on PyMacaron services of both generations, then the result served for real."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from macaron_cli import run_macaron
from servers import gunicorn_service

ROOT = Path(__file__).resolve().parents[1]
# The redis-server, worker and moto server of the async and dynamodb packages' own tests.
sys.path[:0] = [str(ROOT / "packages" / "async" / "tests"), str(ROOT / "packages" / "dynamodb" / "tests")]
from async_support import macaron_worker, redis_server, wait_until  # noqa: E402
from ddb_support import AWS_TEST_ENV, moto_server  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = {"JWT_SECRET": "migrate-test-secret-0123456789abcdef"}


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as port:
        yield f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="module")
def dynamodb_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


def _git(cwd: Path, *args: str) -> str:
    command = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


def _checkout(tmp_path: Path, generation: str) -> Path:
    service = tmp_path / generation
    shutil.copytree(FIXTURES / generation, service)
    _git(service, "init", "-q")
    _git(service, "add", "-A")
    _git(service, "commit", "-qm", "PyMacaron service")
    return service


@pytest.mark.parametrize("generation", ["pymacaron1", "pymacaron2"])
def test_migrate_then_serve(tmp_path: Path, generation: str, redis_url: str, request: pytest.FixtureRequest) -> None:
    service = _checkout(tmp_path, generation)

    dry = run_macaron("migrate", str(service), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "\n-from pymacaron.auth import generate_token, get_userid\n" in dry.stdout
    assert "\n+from macaron.auth import generate_token, get_userid\n" in dry.stdout
    assert "rename pym-config.yaml -> macaron.yaml" in dry.stdout
    assert _git(service, "status", "--porcelain") == ""  # --dry-run changed nothing

    done = run_macaron("migrate", str(service))
    assert done.returncode == 0, done.stderr
    # what it could not decide is listed with file:line and the doc section, never dropped
    docker_repo_line = {"pymacaron1": 10, "pymacaron2": 11}[generation]
    assert f"macaron.yaml:{docker_repo_line}: deploy key 'docker_repo'" in done.stderr
    assert "docs/migrating.md#deploy" in done.stderr
    assert not (service / "server.py").exists() and not (service / "pym-config.yaml").exists()
    assert not (service / "apis" / "hello_app.py").exists()
    api = (service / "hello" / "api.py").read_text()
    assert "pymacaron" not in api and "ApiPool" not in api and "apipool" not in api
    assert "class NotWelcome(MacaronException):" in api
    assert "from macaron_async import asynctask" in (service / "hello" / "tasks.py").read_text()
    if generation == "pymacaron2":
        assert "# the error catalog" in api  # comments survive the rewrite
        converted = (service / "testaccept" / "test_hello.py").read_text()
        assert "class Tests(MacaronTestCase):" in converted and "pymacaron" not in converted
        assert 'self.client.request("GET", "me", headers={"Authorization": "Bearer %s" % self.token}).assert_json()' in converted
        assert "testaccept/test_hello.py" not in done.stderr  # every assertion had a macaron-unit equivalent
    else:
        tasks = (service / "hello" / "tasks.py").read_text()
        assert "log = logging.getLogger(__name__)" in tasks and "import logging\n" in tasks  # pymlogger was logging's
        assert "NameTooShort = exceptionclass" in (service / "hello" / "exceptions.py").read_text()  # globals()['NameTooShort']

    _git(service, "add", "-A")
    _git(service, "commit", "-qm", "migrated")
    again = run_macaron("migrate", str(service))
    assert again.returncode == 0 and "nothing to migrate" in again.stdout
    assert _git(service, "status", "--porcelain") == ""

    validated = run_macaron("validate", str(service), env=SECRET)
    assert validated.returncode == 0, validated.stderr

    log = tmp_path / "server.log"
    with gunicorn_service(service, env=SECRET, output=log) as url:
        hello = requests.get(f"{url}/hello/bob", timeout=10)
        assert hello.status_code == 200 and hello.json()["text"].endswith(" bob")
        refused = requests.get(f"{url}/hello/mallory", timeout=10)
        assert refused.status_code == 403 and refused.json()["error"] == "NOT_WELCOME"
        short = requests.get(f"{url}/hello/x", timeout=10)  # add_error's class, raised
        assert short.status_code == 422 and short.json()["error"] == "NAME_TOO_SHORT"
        assert requests.get(f"{url}/me", timeout=10).status_code == 401
        token = requests.post(f"{url}/login/bob", timeout=10).json()["token"]
        me = requests.get(f"{url}/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.status_code == 200 and me.json()["text"] == "you are bob"
        assert requests.get(f"{url}/hello/eve", timeout=10).status_code == 200
        wait_until(lambda: "eve is listening" in log.read_text(), 5, "report_error's report was not logged")

    # What the user adds after the migration (docs/migrating.md#async, #dynamodb): where the broker and the
    # tables are, in an overlay; then the tables, a worker, and the converted acceptance tests.
    # The overlays are docs/migrating.md's, with this test's servers.
    overlays = _docs_overlays()
    local: dict[str, object] = {"async": {**overlays["async"], "broker_url": redis_url}}
    env = {**SECRET, **AWS_TEST_ENV}
    if generation == "pymacaron2":
        local["dynamodb"] = {**overlays["dynamodb"], "endpoint_url": request.getfixturevalue("dynamodb_url")}
        (service / "macaron.local.yaml").write_text(yaml.safe_dump(local))
        tables = run_macaron("dynamodb", "create-tables", str(service), "--env", "local", "--wait", env=env)
        assert tables.returncode == 0, tables.stderr
    (service / "macaron.local.yaml").write_text(yaml.safe_dump(local))
    with macaron_worker(service, "--concurrency", "1", "--env", "local", env=env, log=tmp_path / "worker.log") as worker:
        accepted = run_macaron("test", "--acceptance", str(service), "--env", "local", env=env, timeout=120)
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr
        tests = {"pymacaron1": 4, "pymacaron2": 8}[generation]
        assert f" {tests} passed" in accepted.stdout and "failed" not in accepted.stdout, accepted.stdout
        wait_until(lambda: "welcome bob, from the worker" in worker.output(), 20, "the worker did not run send_welcome")


DOCS = ROOT / "docs" / "migrating.md"


def _docs_overlays() -> dict[str, dict[str, object]]:
    """The sections of the ``# macaron.local.yaml`` examples of docs/migrating.md, merged."""
    merged: dict[str, dict[str, object]] = {}
    for block in re.findall(r"```yaml\n(# macaron\.local\.yaml.*?)```", DOCS.read_text(), re.S):
        merged.update(yaml.safe_load(block))
    assert set(merged) == {"async", "dynamodb"}
    return merged


def test_what_migrate_prints_is_the_docs_example(tmp_path: Path) -> None:
    service = _checkout(tmp_path, "pymacaron1")
    text = DOCS.read_text()
    section = text[text.index("## What `macaron migrate` prints") :]
    block = section[section.index("```console\n") + len("```console\n") : section.index("\n```", section.index("```console"))]
    command, *expected = block.splitlines()
    assert command == "$ macaron migrate"
    done = run_macaron("migrate", str(service))
    assert done.returncode == 0, done.stderr
    assert (done.stdout + done.stderr).splitlines() == expected


def test_migrate_refuses_a_dirty_tree(tmp_path: Path) -> None:
    service = _checkout(tmp_path, "pymacaron2")
    (service / "hello" / "api.py").write_text("# edited\n", encoding="utf-8")
    result = run_macaron("migrate", str(service))
    assert result.returncode != 0
    assert "uncommitted changes" in result.stderr and "Traceback" not in result.stderr
    assert (service / "pym-config.yaml").exists()
