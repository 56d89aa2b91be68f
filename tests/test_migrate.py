"""``macaron migrate`` on PyMacaron services of both generations, then the result served for real."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from macaron_cli import run_macaron
from servers import gunicorn_service

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = {"JWT_SECRET": "migrate-test-secret-0123456789abcdef"}


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
def test_migrate_then_serve(tmp_path: Path, generation: str) -> None:
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
    assert "macaron.yaml:7: deploy key 'docker_repo'" in done.stderr or "macaron.yaml:9: deploy key 'docker_repo'" in done.stderr
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
        assert "hello/tasks.py:2: 'pymlogger'" in done.stderr

    _git(service, "add", "-A")
    _git(service, "commit", "-qm", "migrated")
    again = run_macaron("migrate", str(service))
    assert again.returncode == 0 and "nothing to migrate" in again.stdout
    assert _git(service, "status", "--porcelain") == ""

    validated = run_macaron("validate", str(service), env=SECRET)
    assert validated.returncode == 0, validated.stderr

    with gunicorn_service(service, env=SECRET) as url:
        hello = requests.get(f"{url}/hello/bob", timeout=10)
        assert hello.status_code == 200 and hello.json()["text"].endswith(" bob")
        refused = requests.get(f"{url}/hello/mallory", timeout=10)
        assert refused.status_code == 403 and refused.json()["error"] == "NOT_WELCOME"
        assert requests.get(f"{url}/me", timeout=10).status_code == 401
        token = requests.post(f"{url}/login/bob", timeout=10).json()["token"]
        me = requests.get(f"{url}/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.status_code == 200 and me.json()["text"] == "you are bob"

    if (service / "testaccept").is_dir():
        accepted = run_macaron("test", "--acceptance", str(service), env=SECRET, timeout=120)
        assert accepted.returncode == 0, accepted.stdout + accepted.stderr
        assert " passed" in accepted.stdout and "failed" not in accepted.stdout


def test_migrate_refuses_a_dirty_tree(tmp_path: Path) -> None:
    service = _checkout(tmp_path, "pymacaron2")
    (service / "hello" / "api.py").write_text("# edited\n", encoding="utf-8")
    result = run_macaron("migrate", str(service))
    assert result.returncode != 0
    assert "uncommitted changes" in result.stderr and "Traceback" not in result.stderr
    assert (service / "pym-config.yaml").exists()
