"""``macaron new``, ``validate`` and ``routes``, run for real on a scaffolded service."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from macaron.scaffold import ScaffoldError, check_name
from macaron_cli import run_macaron
from servers import executable, free_port, gunicorn_service, wait_for_http

EXPECTED_FILES = {
    ".gitignore",
    "README.md",
    "macaron.yaml",
    "pytest.ini",
    "apis/bakery.yaml",
    "bakery/__init__.py",
    "bakery/api.py",
    "tests/conftest.py",
    "tests/test_api.py",
    "testaccept/conftest.py",
    "testaccept/test_hello.py",
    "testaccept/test_reverse.py",
}


def clean_env(**extra: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MACARON_") and key != "PYTHONPATH"}
    environment.update(extra)
    return environment


def run_pytest(service: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=service, env=env or clean_env(), capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    parent = tmp_path_factory.mktemp("scaffold")
    result = run_macaron("new", "bakery", "--path", str(parent))
    assert result.returncode == 0, result.stderr
    assert "macaron serve" in result.stdout
    return parent / "bakery"


def test_new_writes_every_file(service: Path) -> None:
    files = {path.relative_to(service).as_posix() for path in service.rglob("*") if path.is_file() and "__pycache__" not in path.parts}
    assert files >= EXPECTED_FILES
    assert "x-bind-server: bakery.api.hello" in (service / "apis" / "bakery.yaml").read_text()
    assert "name: bakery" in (service / "macaron.yaml").read_text()
    assert "{{name}}" not in "".join((service / name).read_text() for name in EXPECTED_FILES)
    assert not [p for p in service.parent.iterdir() if p.name.startswith(".bakery")]  # no staging folder left


def test_scaffolded_service_validates(service: Path) -> None:
    result = run_macaron("validate", str(service))
    assert result.returncode == 0, result.stderr
    assert "bakery: 2 APIs, 4 operations, all bound. OK" in result.stdout


def test_scaffolded_tests_pass_unit_and_black_box_against_gunicorn(service: Path) -> None:
    # One pytest run for both folders: each run pays for importing the installed pytest plugins.
    with gunicorn_service(service) as url:
        result = run_pytest(service, "tests", "testaccept", env=clean_env(MACARON_TEST_URL=url))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12 passed" in result.stdout and "skipped" not in result.stdout


def test_plain_pytest_runs_the_unit_tests(service: Path) -> None:
    unit = run_pytest(service, env=clean_env(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"))
    assert unit.returncode == 0, unit.stdout + unit.stderr
    assert "6 passed" in unit.stdout


def test_black_box_tests_without_a_url_serve_the_service_themselves(service: Path) -> None:
    result = run_pytest(service, "testaccept")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout


def test_macaron_serve_name_runs_it(service: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [executable("macaron"), "serve", "bakery", "--port", str(port)],
        cwd=service.parent,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(url + "/ping", process=process)
        assert requests.get(url + "/v1/hello/Ada", timeout=10).json() == {"message": "Hello, Ada!"}
        assert requests.get(url + "/docs", timeout=10).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_routes_lists_method_path_operation_handler(service: Path) -> None:
    result = run_macaron("routes", str(service))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["method", "path", "operation", "handler"]
    rows = [line.split() for line in lines[2:]]
    assert ["GET", "/v1/hello/{name}", "hello", "bakery.api.hello"] in rows
    assert ["POST", "/v1/reverse", "reverse", "bakery.api.reverse"] in rows
    assert ["GET", "/ping", "ping", "macaron.builtins.ping.ping"] in rows
    # Routes plugins add at start-up are listed too, without an operation.
    assert ["GET", "/docs", "-", "macaron.builtins.docs.make_blueprint.page"] in rows


def test_new_refuses_an_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "bakery").mkdir()
    (tmp_path / "bakery" / "notes.txt").write_text("mine")
    result = run_macaron("new", "bakery", "--path", str(tmp_path))
    assert result.returncode != 0
    assert f"{tmp_path / 'bakery'}: already exists; macaron new does not overwrite anything" in result.stderr
    assert [p.name for p in (tmp_path / "bakery").iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("My-Service", "'My-Service' is not a valid service name: use lower-case letters, digits and underscores"),
        ("2fast", "'2fast' is not a valid service name"),
        ("class", "'class' is reserved"),
        ("tests", "'tests' is reserved"),
        ("json", "'json' is already the name of an importable Python module"),
        ("flask", "'flask' is already the name of an importable Python module"),
    ],
)
def test_new_refuses_a_bad_name(name: str, message: str) -> None:
    with pytest.raises(ScaffoldError, match=message):
        check_name(name)


def test_new_bad_name_on_the_command_line(tmp_path: Path) -> None:
    result = run_macaron("new", "My-Service", "--path", str(tmp_path))
    assert result.returncode != 0
    assert "'My-Service' is not a valid service name" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_validate_names_file_path_and_operation_of_a_broken_binding(service: Path, tmp_path: Path) -> None:
    broken = shutil.copytree(service, tmp_path / "bakery")
    spec = broken / "apis" / "bakery.yaml"
    spec.write_text(spec.read_text().replace("x-bind-server: bakery.api.reverse", "x-bind-server: bakery.api.reverse_text"))
    result = run_macaron("validate", str(broken))
    assert result.returncode != 0
    assert (
        f"{spec}: at /paths/~1reverse/post (operation reverse): handler 'bakery.api.reverse_text': "
        "module bakery.api has no function 'reverse_text'"
    ) in result.stderr


def test_validate_names_a_spec_error(service: Path, tmp_path: Path) -> None:
    broken = shutil.copytree(service, tmp_path / "bakery")
    spec = broken / "apis" / "bakery.yaml"
    spec.write_text(spec.read_text().replace("in: path, required: true", "in: path, required: false"))
    result = run_macaron("validate", str(broken))
    assert result.returncode != 0
    assert f"{spec}: at /paths/~1hello~1{{name}}/get" in result.stderr
    assert "(operation hello)" in result.stderr


def test_validate_names_a_config_error(service: Path, tmp_path: Path) -> None:
    broken = shutil.copytree(service, tmp_path / "bakery")
    config = broken / "macaron.yaml"
    config.write_text(config.read_text() + "docs: sometimes\n")
    result = run_macaron("validate", str(broken))
    assert result.returncode != 0
    assert f"{config}: 'docs' must be true or false, not 'sometimes'" in result.stderr


def test_on_a_fresh_machine_the_printed_test_line_works(tmp_path: Path) -> None:
    """pip install ./packages/core in an empty venv, then `macaron new` and the `test it:` line it prints, verbatim."""
    repo = Path(__file__).resolve().parents[1]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp_path)), "VIRTUAL_ENV": str(venv)}
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(repo / "packages" / "core")], env=env, capture_output=True, text=True, timeout=600
    )
    assert install.returncode == 0, install.stderr
    new = subprocess.run(["macaron", "new", "bakery"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert new.returncode == 0, new.stderr
    line = next(text for text in new.stdout.splitlines() if text.strip().startswith("test it:")).split("test it:", 1)[1].strip()
    # Neither pytest nor macaron-unit is in the fresh venv: the line installs them, from this checkout while unpublished.
    assert line.startswith(f"pip install pytest {repo / 'packages' / 'unit'} && cd "), line
    assert f"pip install pytest {repo / 'packages' / 'unit'}" in (tmp_path / "bakery" / "README.md").read_text()
    result = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("6 passed") == 2, result.stdout[-3000:]
