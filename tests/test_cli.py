"""The ``macaron`` command, run for real: --version, plugins list, a third-party plugin's command and hooks, deploy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import requests
import yaml

import macaron
import macaron_greeter.plugin
from macaron.plugins import DEFAULT_PLUGINS
from macaron_cli import make_distribution, run_macaron
from servers import gunicorn_service

ROOT = Path(__file__).resolve().parent.parent
BUILTINS = sorted(module.rsplit(".", 1)[-1] for module in DEFAULT_PLUGINS)
GREETER_HOOKS = sorted(name for name, value in vars(macaron_greeter.plugin).items() if hasattr(value, "macaron_impl"))
SPEC = """\
swagger: '2.0'
info: {title: greeted, version: '1'}
produces: [application/json]
paths:
  /hello/{name}:
    get:
      operationId: hello
      x-bind-server: greeted_api.hello
      parameters:
        - {name: name, in: path, required: true, type: string, maxLength: 5}
      responses:
        200:
          description: A greeting.
          schema: {type: object, required: [text], properties: {text: {type: string}}}
"""
HANDLERS = """\
def hello(name):
    return {"text": f"hello {name}"}
"""


def write_service(folder: Path, config: dict[str, object], spec: str = SPEC) -> Path:
    (folder / "apis").mkdir(parents=True)
    (folder / "apis" / "greeted.yaml").write_text(spec)
    (folder / "greeted_api.py").write_text(HANDLERS)
    (folder / "macaron.yaml").write_text(yaml.safe_dump({"name": "greeted", "version": "1.0.0", **config}))
    return folder


def test_version() -> None:
    result = run_macaron("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"macaron, version {metadata.version('macaron-core')}"
    assert macaron.__version__ == metadata.version("macaron-core")


def test_plugins_list_prints_a_table() -> None:
    result = run_macaron("plugins", "list")
    assert result.returncode == 0, result.stderr
    header, rule, *rows = result.stdout.splitlines()
    assert header.split() == ["plugin", "distribution", "module", "targets", "hooks"]
    assert set(rule) == {"-", " "}
    by_name = {row.split()[0]: row for row in rows}
    assert f"macaron-core {metadata.version('macaron-core')} (built-in)" in by_name["swagger2"]
    assert by_name["swagger2"].rstrip().endswith("load_spec")
    greeter = by_name["greeter"]
    assert "macaron-greeter 0.3.0" in greeter and "macaron_greeter.plugin" in greeter
    assert greeter.rstrip().endswith(", ".join(GREETER_HOOKS))
    names = [row.split()[0] for row in rows]
    assert names[: len(BUILTINS)] == BUILTINS, "built-ins first"
    assert names[len(BUILTINS) :] == sorted(names[len(BUILTINS) :]), "then the others by name"


def test_plugins_list_json() -> None:
    result = run_macaron("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {plugin["name"]: plugin for plugin in json.loads(result.stdout)}
    assert plugins["swagger2"] == {
        "name": "swagger2",
        "distribution": "macaron-core",
        "version": metadata.version("macaron-core"),
        "module": "macaron.builtins.swagger2",
        "builtin": True,
        "hooks": ["load_spec"],
        "deploy_targets": [],
    }
    assert plugins["ping"]["builtin"] and "register_apis" in plugins["ping"]["hooks"]
    assert plugins["greeter"] == {
        "name": "greeter",
        "distribution": "macaron-greeter",
        "version": "0.3.0",
        "module": "macaron_greeter.plugin",
        "builtin": False,
        "hooks": GREETER_HOOKS,
        "deploy_targets": ["greeter-folder"],
    }


def test_plugin_command_runs() -> None:
    result = run_macaron("greet", "Ann", "--shout")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "HELLO, ANN! (FROM MACARON-GREETER)\n"
    assert "greet" in run_macaron("--help").stdout


def test_blocking_a_plugin_removes_it_and_its_command() -> None:
    blocked = {"MACARON_DISABLE_PLUGINS": "greeter"}
    listed = json.loads(run_macaron("plugins", "list", "--json", env=blocked).stdout)
    assert "greeter" not in {plugin["name"] for plugin in listed}
    assert {"ping", "swagger2"} <= {plugin["name"] for plugin in listed}
    result = run_macaron("greet", "Ann", env=blocked)
    assert result.returncode == 2
    assert "No such command 'greet'" in result.stderr
    not_allowed = run_macaron("greet", "Ann", env={"MACARON_LOAD_PLUGINS": "someone-else"})
    assert not_allowed.returncode == 2


def test_plugin_hooks_are_called_in_a_served_service(tmp_path: Path) -> None:
    service = write_service(tmp_path / "greeted", {"greeter": {"greeting": "Hi there", "user_message": "Try a shorter name."}})
    with gunicorn_service(service) as url:
        ok = requests.get(f"{url}/hello/ann", timeout=5)
        assert ok.status_code == 200 and ok.json() == {"text": "hello ann"}
        assert ok.headers["X-Greeting"] == "Hi there"  # wrap_endpoint
        invalid = requests.get(f"{url}/hello/annabelle", timeout=5)
        assert invalid.status_code == 400
        assert invalid.json()["user_message"] == "Try a shorter name."  # on_error
        missing = requests.get(f"{url}/nowhere", timeout=5)
        assert missing.status_code == 404 and missing.json()["user_message"] == "Try a shorter name."
    with gunicorn_service(service, env={"MACARON_DISABLE_PLUGINS": "greeter"}) as url:
        ok = requests.get(f"{url}/hello/ann", timeout=5)
        assert ok.status_code == 200 and "X-Greeting" not in ok.headers
        assert "user_message" not in requests.get(f"{url}/hello/annabelle", timeout=5).json()


def test_deploy_lists_targets() -> None:
    result = run_macaron("deploy", "--list")
    assert result.returncode == 0, result.stderr
    header, _, *rows = result.stdout.splitlines()
    assert header.split() == ["target", "plugin", "distribution"]
    assert ["greeter-folder", "greeter", "macaron-greeter"] in [row.split() for row in rows]
    assert run_macaron("deploy").stdout == result.stdout
    as_json = json.loads(run_macaron("deploy", "--list", "--json").stdout)
    assert {"target": "greeter-folder", "plugin": "greeter", "distribution": "macaron-greeter"} in as_json
    blocked = json.loads(run_macaron("deploy", "--list", "--json", env={"MACARON_DISABLE_PLUGINS": "greeter"}).stdout)
    assert "greeter-folder" not in {row["target"] for row in blocked}
    none = run_macaron("deploy", "--list", env={"MACARON_LOAD_PLUGINS": ""})
    assert none.returncode == 0 and "No deploy target installed" in none.stdout


def test_deploy_to_a_plugin_target(tmp_path: Path) -> None:
    service = write_service(tmp_path / "greeted", {"greeter": {"deploy_dir": "out"}})
    dry = run_macaron("deploy", "greeter-folder", str(service), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry_run: True" in dry.stdout.splitlines()
    assert not (service / "out").exists()

    result = run_macaron("deploy", "greeter-folder", str(service), "--env", "prod", "--version", "2.0.1", "--json")
    assert result.returncode == 0, result.stderr
    manifest = service / "out" / "greeted-2.0.1.json"
    assert json.loads(result.stdout) == {"target": "greeter-folder", "url": manifest.as_uri(), "version": "2.0.1", "dry_run": False}
    assert json.loads(manifest.read_text()) == {"name": "greeted", "version": "2.0.1", "env": "prod", "specs": ["greeted.yaml"]}

    default_version = run_macaron("deploy", "greeter-folder", ".", cwd=service)
    assert default_version.returncode == 0, default_version.stderr
    assert (service / "out" / "greeted-1.0.0.json").exists()


def test_deploy_to_an_unknown_target_names_the_known_ones(tmp_path: Path) -> None:
    result = run_macaron("deploy", "mars", str(write_service(tmp_path / "s", {})))
    assert result.returncode == 1
    assert "unknown deploy target 'mars' (known targets: " in result.stderr
    assert "greeter-folder" in result.stderr.split("known targets: ", 1)[1]
    assert "Traceback" not in result.stderr


def test_deploy_refuses_a_target_named_by_two_plugins(tmp_path: Path) -> None:
    rival = make_distribution(
        tmp_path / "site",
        "macaron-rival",
        "rival",
        """\
        from macaron import hookimpl

        @hookimpl
        def register_deploy_targets():
            return ["greeter-folder"]
        """,
    )
    result = run_macaron("deploy", "--list", path=[rival])
    assert result.returncode == 1
    assert "deploy target 'greeter-folder' is named by two plugins" in result.stderr
    assert "'rival'" in result.stderr and "'greeter'" in result.stderr
    assert run_macaron("deploy", "--list", path=[rival], env={"MACARON_DISABLE_PLUGINS": "rival"}).returncode == 0


def test_deploy_checks_the_service_before_deploying(tmp_path: Path) -> None:
    service = write_service(tmp_path / "broken", {}, spec=SPEC.replace("greeted_api.hello", "greeted_api.missing"))
    result = run_macaron("deploy", "greeter-folder", str(service))
    assert result.returncode == 1
    assert "greeted_api.missing" in result.stderr and "greeted.yaml" in result.stderr
    assert not (service / "releases").exists()


def pip_index_reachable(tmp_path: Path) -> bool:
    """Whether pip can fetch a build dependency of macaron-core within a few seconds."""
    try:
        probe = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--timeout", "5", "--retries", "0", "-d", str(tmp_path), "hatchling"],
            capture_output=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0


def test_fresh_virtualenv_lists_builtins_then_an_installed_plugin(tmp_path: Path) -> None:
    """The issue's done-criterion: pip install ./packages/core in a new venv, then plugins list --json."""
    if not pip_index_reachable(tmp_path / "probe"):
        pytest.skip("pip cannot reach a package index")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    pip, macaron_command = venv / "bin" / "pip", venv / "bin" / "macaron"
    # A copy, so the build does not write into the source tree.
    core = shutil.copytree(ROOT / "packages" / "core", tmp_path / "core", ignore=shutil.ignore_patterns("tests", "__pycache__"))
    installed = subprocess.run([str(pip), "install", "-q", str(core)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-3000:]
    clean_env = {key: value for key, value in os.environ.items() if not key.startswith(("MACARON_", "PYTHONPATH"))}

    listed = subprocess.run([str(macaron_command), "plugins", "list", "--json"], capture_output=True, text=True, env=clean_env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    plugins = {plugin["name"]: plugin for plugin in json.loads(listed.stdout)}
    assert sorted(plugins) == BUILTINS and all(plugin["builtin"] for plugin in plugins.values())
    assert plugins["swagger2"]["hooks"] == ["load_spec"] and plugins["swagger2"]["builtin"]
    assert "register_apis" in plugins["ping"]["hooks"]

    greeter = shutil.copytree(ROOT / "tests" / "plugin_package", tmp_path / "greeter", ignore=shutil.ignore_patterns("__pycache__"))
    installed = subprocess.run([str(pip), "install", "-q", "--no-deps", str(greeter)], capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr[-3000:]
    listed = subprocess.run([str(macaron_command), "plugins", "list", "--json"], capture_output=True, text=True, env=clean_env, timeout=60)
    plugins = {plugin["name"]: plugin for plugin in json.loads(listed.stdout)}
    assert plugins["greeter"]["hooks"] == GREETER_HOOKS
    greeted = subprocess.run([str(macaron_command), "greet", "Bo"], capture_output=True, text=True, env=clean_env, timeout=60)
    assert greeted.stdout == "Hello, Bo! (from macaron-greeter)\n"
