"""The plugin manager: built-ins as plugins, entry points, run-time plugins, environment controls, broken plugins."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import macaron_greeter.plugin
from macaron import hookimpl
from macaron.config import Config
from macaron.plugins import DEFAULT_PLUGINS, ENTRY_POINT_GROUP, get_plugin_manager
from macaron_cli import make_distribution, run_macaron

GREETER_HOOKS = sorted(name for name, value in vars(macaron_greeter.plugin).items() if hasattr(value, "macaron_impl"))
BROKEN_PLUGIN = """\
import macaron_no_such_dependency  # the plugin's own import fails
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("MACARON_LOAD_PLUGINS", "MACARON_DISABLE_PLUGINS", "MACARON_STRICT_PLUGINS", "MACARON_TRACE_PLUGINS"):
        monkeypatch.delenv(variable, raising=False)


def infos_by_name(manager: Any) -> dict[str, Any]:
    return {info.name: info for info in manager.plugin_infos()}


def test_builtins_are_registered_as_plugins_of_macaron_core() -> None:
    infos = infos_by_name(get_plugin_manager(load_entrypoints=False))
    builtins = {name: info for name, info in infos.items() if info.builtin}
    assert sorted(builtins) == sorted(module.rsplit(".", 1)[-1] for module in DEFAULT_PLUGINS)
    assert infos["swagger2"].hooks == ["load_spec"]
    assert "register_apis" in infos["ping"].hooks
    for info in builtins.values():
        assert info.distribution == "macaron-core"
        assert info.version == metadata.version("macaron-core")
        assert info.module.startswith("macaron.builtins.")


def test_installed_entry_point_plugin_is_loaded_with_its_distribution() -> None:
    entry_points = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert "greeter" in entry_points, "tests/plugin_package is not installed: pip install ./tests/plugin_package"
    infos = infos_by_name(get_plugin_manager())
    greeter = infos["greeter"]
    assert (greeter.distribution, greeter.version, greeter.builtin) == ("macaron-greeter", "0.3.0", False)
    assert greeter.module == "macaron_greeter.plugin"
    assert greeter.hooks == GREETER_HOOKS
    # Built-ins come first in listings, then the rest by name.
    assert [info.builtin for info in infos.values()] == sorted((info.builtin for info in infos.values()), reverse=True)


def test_without_entry_points_only_builtins_load() -> None:
    assert "greeter" not in infos_by_name(get_plugin_manager(load_entrypoints=False))


def test_plugin_registered_at_run_time_is_listed_and_called() -> None:
    class Audit:
        def __init__(self) -> None:
            self.seen: list[Path] = []

        @hookimpl
        def register_apis(self, config: Config) -> list[Path]:
            self.seen.append(Path(str(config.get("name"))))
            return [Path("/nowhere/audit.yaml")]

    manager = get_plugin_manager(load_entrypoints=False)
    audit = Audit()
    assert manager.register_plugin(audit, name="audit") == "audit"
    info = infos_by_name(manager)["audit"]
    assert (info.module, info.hooks, info.builtin, info.distribution) == (__name__, ["register_apis"], False, None)
    results = manager.hook.register_apis(config=Config({"name": "svc"}))
    assert [Path("/nowhere/audit.yaml")] in results
    assert audit.seen == [Path("svc")]
    manager.unregister(audit)
    assert "audit" not in infos_by_name(manager)


def test_disable_plugins_blocks_builtins_and_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACARON_DISABLE_PLUGINS", "greeter, ping")
    manager = get_plugin_manager()
    infos = infos_by_name(manager)
    assert "greeter" not in infos and "ping" not in infos
    assert "swagger2" in infos
    with pytest.raises(ValueError, match="blocked"):
        manager.register_plugin(macaron_greeter.plugin, name="greeter")


@pytest.mark.parametrize(("allowed", "loaded"), [("", False), ("greeter", True), ("someone-else", False), (" greeter ,other", True)])
def test_load_plugins_is_an_allow_list_of_entry_points(monkeypatch: pytest.MonkeyPatch, allowed: str, loaded: bool) -> None:
    monkeypatch.setenv("MACARON_LOAD_PLUGINS", allowed)
    infos = infos_by_name(get_plugin_manager())
    assert ("greeter" in infos) is loaded
    assert {"ping", "swagger2"} <= set(infos), "built-ins load whatever the allow-list says"


def test_plugin_failing_to_import_is_one_line_and_macaron_goes_on(tmp_path: Path) -> None:
    site = make_distribution(tmp_path, "macaron-broken", "broken", BROKEN_PLUGIN, version="0.2.1")
    result = run_macaron("plugins", "list", "--json", path=[site])
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "macaron-broken 0.2.1" in lines[0] and "'broken'" in lines[0]
    assert "ModuleNotFoundError" in lines[0] and "macaron_no_such_dependency" in lines[0]
    listed = {plugin["name"] for plugin in json.loads(result.stdout)}
    assert {"ping", "swagger2", "greeter"} <= listed and "broken" not in listed


def test_strict_plugins_stops_on_a_plugin_failing_to_import(tmp_path: Path) -> None:
    site = make_distribution(tmp_path, "macaron-broken", "broken", BROKEN_PLUGIN)
    result = run_macaron("plugins", "list", path=[site], env={"MACARON_STRICT_PLUGINS": "1"})
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "macaron-broken" in lines[0] and "ModuleNotFoundError" in lines[0], result.stderr


def test_broken_plugin_blocked_by_name_is_not_even_imported(tmp_path: Path) -> None:
    site = make_distribution(tmp_path, "macaron-broken", "broken", BROKEN_PLUGIN)
    result = run_macaron("plugins", "list", path=[site], env={"MACARON_STRICT_PLUGINS": "1", "MACARON_DISABLE_PLUGINS": "broken"})
    assert result.returncode == 0 and result.stderr == ""


def test_trace_plugins_prints_hook_calls() -> None:
    result = run_macaron("--version", env={"MACARON_TRACE_PLUGINS": "1"})
    assert result.returncode == 0
    assert "register_commands [hook]" in result.stderr
    assert run_macaron("--version").stderr == ""
