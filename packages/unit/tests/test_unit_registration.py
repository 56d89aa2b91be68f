"""macaron-unit is a plugin like any other: listed, adding `macaron test`, removable by environment."""

from __future__ import annotations

import json
from importlib import metadata

from macaron_cli import run_macaron


def test_listed_with_the_hook_that_adds_its_command() -> None:
    result = run_macaron("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    unit = next(plugin for plugin in json.loads(result.stdout) if plugin["name"] == "unit")
    assert unit["distribution"] == "macaron-unit"
    assert unit["module"] == "macaron_unit.plugin"
    assert unit["hooks"] == ["register_commands"]
    table = run_macaron("plugins", "list").stdout
    assert any(line.split()[:2] == ["unit", "macaron-unit"] and line.rstrip().endswith("register_commands") for line in table.splitlines())


def test_adds_the_test_command() -> None:
    result = run_macaron("--help")
    assert any(line.split()[:1] == ["test"] for line in result.stdout.splitlines()), result.stdout
    assert "--contract" in run_macaron("test", "--help").stdout


def test_blocked_by_environment_the_command_is_gone() -> None:
    result = run_macaron("test", "--help", env={"MACARON_DISABLE_PLUGINS": "unit"})
    assert result.returncode == 2
    assert "No such command 'test'" in result.stderr


def test_the_pytest_plugin_is_registered() -> None:
    entry_points = {ep.name: ep.value for ep in metadata.entry_points(group="pytest11")}
    assert entry_points["macaron"] == "macaron_unit.pytest_plugin"
