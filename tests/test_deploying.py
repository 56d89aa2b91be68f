"""macaron.deploying, the pieces every deploy target shares, against real git trees and real served services."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from macaron.deploying import (
    DeployError,
    Pipeline,
    check_service,
    local_registry,
    mask_environment,
    run_gate,
    served_version,
    wait_for_version,
)
from servers import gunicorn_service

HELLO = Path(__file__).parent.parent / "examples" / "helloworld"


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", *args], check=True, capture_output=True)


@pytest.fixture
def service(tmp_path: Path) -> Path:
    root = tmp_path / "hello"
    shutil.copytree(HELLO, root, ignore=shutil.ignore_patterns("__pycache__"))
    with (root / "macaron.yaml").open("a", encoding="utf-8") as config:
        config.write("env_secrets:\n  - HELLO_DB_PASSWORD\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "hello")
    return root


def test_check_hands_over_the_secrets_of_a_clean_commit(service: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELLO_DB_PASSWORD", "pw-123")
    checked = check_service(service)
    assert checked.secrets == {"HELLO_DB_PASSWORD": "pw-123"}
    assert checked.commit is not None and len(checked.commit.revision) == 40


def test_check_names_every_missing_secret(service: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HELLO_DB_PASSWORD", raising=False)
    with pytest.raises(DeployError, match=r"env_secrets not set in this environment: HELLO_DB_PASSWORD;.*nothing was deployed"):
        check_service(service)


def test_check_refuses_uncommitted_changes(service: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELLO_DB_PASSWORD", "pw-123")
    (service / "macaron.yaml").write_text((service / "macaron.yaml").read_text() + "# edited\n")
    with pytest.raises(DeployError, match="uncommitted changes"):
        check_service(service)


def test_steps_are_printed_timed_and_masked(capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = Pipeline("somewhere", secrets={"TOKEN": "hunter2-secret"})
    with pipeline.step("version") as step:
        step.detail["label"] = "v1"
        pipeline.say("sending hunter2-secret to the environment")
    with pytest.raises(RuntimeError), pipeline.step("green"):
        raise RuntimeError("boom")
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert "[somewhere] sending **** to the environment" in out
    assert "[somewhere] version: done (label v1) in" in out
    assert "[somewhere] green: FAILED in" in out
    summary = pipeline.summary(url="http://x", note="hunter2-secret")
    assert summary["note"] == "****"
    assert [(s["step"], s["ok"]) for s in summary["steps"]] == [("version", True), ("green", False)]


def test_json_mode_keeps_stdout_for_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = Pipeline("somewhere", as_json=True)
    with pipeline.step("image"):
        pass
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "[somewhere] image: done" in captured.err


def test_dry_runs_show_secrets_as_stars() -> None:
    shown = mask_environment({"HELLO_DB_PASSWORD": "pw", "MODE": "live"}, ["HELLO_DB_PASSWORD"])
    assert shown == {"HELLO_DB_PASSWORD": "****", "MODE": "live"}


def test_the_gate_passes_a_good_service_and_fails_a_wrong_one(tmp_path: Path) -> None:
    with gunicorn_service(HELLO) as url:
        assert served_version(url) == "0.1.0"
        assert wait_for_version(url, "0.1.0", timeout=5) < 5
        with pytest.raises(DeployError, match=r"still answers 0\.1\.0 after 1 s, not 9\.9\.9"):
            wait_for_version(url, "9.9.9", timeout=1, interval=0.2)
        passed = run_gate(url, HELLO, time_limit=20)
        assert passed.passed, passed.tail()
    # The same tests against a service that answers differently: the acceptance tests fail.
    other = tmp_path / "other"
    shutil.copytree(HELLO, other, ignore=shutil.ignore_patterns("__pycache__"))
    handlers = other / "helloworld" / "api.py"
    source = handlers.read_text()
    assert '"en": "Hello"' in source
    handlers.write_text(source.replace('"en": "Hello"', '"en": "Goodbye"'))
    with gunicorn_service(other) as url:
        failed = run_gate(url, HELLO, time_limit=20)
    assert not failed.passed
    assert "acceptance tests FAILED" in failed.report
    # However long the contract run's report after it, the acceptance failure stays in what a failed deploy prints.
    assert "Goodbye, Ada!" in failed.tail(3) and "acceptance tests FAILED" in failed.tail(3)


def test_a_rehearsal_registry_serves_the_registry_api() -> None:
    if shutil.which("docker-registry") is None:
        pytest.fail("docker-registry is not installed: tests/system-packages.txt should have installed it")
    with local_registry() as registry:
        answer = requests.get(f"http://{registry}/v2/_catalog", timeout=5)
        assert answer.status_code == 200 and json.loads(answer.text) == {"repositories": []}
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{registry}/v2/", timeout=2)


def test_no_registry_program_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", os.devnull)
    with pytest.raises(DeployError, match="install Debian's docker-registry package"), local_registry():
        pass
