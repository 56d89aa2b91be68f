"""`macaron test --contract`: schemathesis requests from the served specs, every response checked."""

from __future__ import annotations

import time
from pathlib import Path

from unit_support import BUGGY, HELLOWORLD, SAMPLE

from macaron_cli import run_macaron
from macaron_unit import ServiceServer
from macaron_unit.contract import SKIPPED, run_contract


def test_the_example_service_keeps_its_contract(helloworld_server: ServiceServer) -> None:
    result = run_macaron("test", "--contract", str(HELLOWORLD), "--url", helloworld_server.url, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for operation in ("GET /v1/hello/{name} (sayHello)", "POST /v1/questions (ask)", "POST /v1/upload (upload)", "GET /ping (ping)"):
        assert f"PASS  {operation}" in result.stdout
    assert " 0 failed, 0 skipped" in result.stdout


def test_seeded_bugs_are_found_and_reported_with_a_request_to_replay() -> None:
    result = run_macaron("test", "--contract", str(BUGGY), timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "macaron test: serving" in out
    # A crash on input the spec allows: people=0.
    assert "FAIL  GET /v1/split/{total} (split)" in out
    crash = out.split("=== FAIL GET /v1/split/{total} (split) [buggy] ===")[1].split("===")[0]
    assert "Server error" in crash
    assert "curl -X GET 'http://127.0.0.1:" in crash and "people=0" in crash
    # A status the spec does not document.
    assert "FAIL  GET /v1/items/{item_id} (getItem)" in out
    undocumented = out.split("=== FAIL GET /v1/items/{item_id} (getItem) [buggy] ===")[1]
    assert "Undocumented status code" in undocumented and "Received: 404" in undocumented
    assert "curl -X GET http://127.0.0.1:" in undocumented
    assert "2 failed" in out
    # The crash's traceback, from the server's log.
    assert "ZeroDivisionError" in result.stderr


def test_a_running_server_by_url_with_secured_operations(sample_server: ServiceServer) -> None:
    result = run_macaron("test", "--contract", str(SAMPLE), "--url", sample_server.url, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"testing {sample_server.url}" in result.stdout
    assert "macaron test: serving" not in result.stdout  # the summary names the service folder, whose path may hold any word
    # Reached with the token issued from the config (see the next test for what happens without).
    assert "PASS  GET /v1/profile (profile)" in result.stdout
    assert "PASS  GET /v1/settings (settings)" in result.stdout  # the token holds every scope the spec requires
    assert "PASS  GET /auth/version (auth_version)" in result.stdout


def test_secured_operations_need_the_token(sample_server: ServiceServer) -> None:
    # /v1/profile documents only 200: a request without a valid token gets an undocumented 401.
    report = run_contract(SAMPLE, sample_server.url, max_examples=3, token="not-a-jwt", negative=False)
    failed = {result.operation_id: result for result in report.failed}
    assert sorted(failed) == ["profile", "settings"]
    assert "Received: 401" in failed["profile"].report and "Received: 401" in failed["settings"].report


def test_the_run_stops_at_its_time_limit(helloworld_server: ServiceServer) -> None:
    started = time.monotonic()
    report = run_contract(HELLOWORLD, helloworld_server.url, max_examples=1000, time_limit=1.0)
    assert time.monotonic() - started < 10
    assert report.timed_out
    assert "time limit reached" in report.summary()
    assert not report.failed
    assert [result.report for result in report.results if result.status == SKIPPED][-1] == "not tested: time limit reached"


def test_a_folder_that_is_not_a_service_is_refused(tmp_path: Path) -> None:
    result = run_macaron("test", "--contract", str(tmp_path))
    assert result.returncode == 1
    assert f"{tmp_path.resolve()}: not a macaron service (no macaron.yaml)" in result.stderr
    assert "Traceback" not in result.stderr
