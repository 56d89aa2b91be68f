"""The installed plugin as the `macaron` command shows it: plugins list, the worker command and its errors."""

from __future__ import annotations

import json
from pathlib import Path

from async_support import write_service

from macaron_cli import run_macaron

HANDLERS = """
def run(n):
    return None
"""


def test_plugins_list_shows_the_package_and_its_hooks() -> None:
    result = run_macaron("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    plugin = next(p for p in json.loads(result.stdout) if p["name"] == "async")
    assert plugin["distribution"] == "macaron-async"
    assert plugin["module"] == "macaron_async.plugin"
    assert plugin["builtin"] is False
    assert plugin["hooks"] == ["register_commands", "startup"]
    table = run_macaron("plugins", "list").stdout
    row = next(line for line in table.splitlines() if line.startswith("async "))
    assert "macaron-async" in row and "register_commands, startup" in row


def test_the_worker_command_is_added_with_its_options() -> None:
    assert "worker" in run_macaron("--help").stdout
    result = run_macaron("worker", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--concurrency", "--queues", "--loglevel", "--pool", "--hostname", "--env"):
        assert option in result.stdout


def test_no_worker_for_a_service_whose_tasks_run_in_process(tmp_path: Path) -> None:
    root, _ = write_service(tmp_path / "service", HANDLERS, {"mode": "inprocess"})
    result = run_macaron("worker", str(root))
    assert result.returncode == 1
    assert f"{root / 'macaron.yaml'}: async.mode is inprocess, so tasks run in the web process and no worker is needed" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_async_section_stops_the_worker_naming_file_and_key(tmp_path: Path) -> None:
    root, _ = write_service(tmp_path / "service", HANDLERS, {"broker_url": "redis://127.0.0.1:1/0", "visibility_timout": 60})
    result = run_macaron("worker", str(root))
    assert result.returncode == 1
    assert f"{root / 'macaron.yaml'}: unknown key in 'async': visibility_timout" in result.stderr
    assert "Traceback" not in result.stderr
