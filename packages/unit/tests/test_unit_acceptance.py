"""`macaron test --acceptance`: a service's testaccept/ against a real gunicorn server."""

from __future__ import annotations

import shutil
from pathlib import Path

from unit_support import HELLOWORLD, copy_service

from macaron_cli import run_macaron
from macaron_unit import ServiceServer


def test_a_broken_handler_fails_the_acceptance_tests(tmp_path: Path) -> None:
    service = copy_service(HELLOWORLD, tmp_path / "hw")
    shutil.copytree(HELLOWORLD / "testaccept", service / "testaccept", ignore=shutil.ignore_patterns("__pycache__"))
    api = service / "helloworld" / "api.py"
    api.write_text(api.read_text().replace("def say_hello(name: str, lang: list[str], times: int, x_caller: str | None) -> Any:\n",
                                           "def say_hello(name: str, lang: list[str], times: int, x_caller: str | None) -> Any:\n    raise RuntimeError('broken on purpose')\n"))  # fmt: skip
    result = run_macaron("test", "--acceptance", str(service), timeout=120)
    assert result.returncode != 0
    assert "FAILED testaccept/test_hello.py::test_hello_in_english_by_default" in result.stdout
    assert "expected status 200, got 500" in result.stdout
    assert "FAILED testaccept/test_questions.py" not in result.stdout  # the other endpoints still work
    assert "macaron test: serving" in result.stdout and "under gunicorn at http://127.0.0.1:" in result.stdout
    assert "acceptance tests FAILED" in result.stderr
    assert "RuntimeError: broken on purpose" in result.stdout + result.stderr  # the server's log, with the traceback


def test_the_example_passes_its_acceptance_tests(helloworld_server: ServiceServer) -> None:
    # As `nox -s acceptance` runs it, against the server already up for the other tests (the
    # tests above and below show `macaron test` starting its own).
    result = run_macaron("test", "--acceptance", str(HELLOWORLD), "--url", helloworld_server.url, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"macaron test: testing {helloworld_server.url}" in result.stdout
    assert "macaron test: serving" not in result.stdout  # pytest prints its rootdir, which may hold any word
    assert " passed" in result.stdout and "failed" not in result.stdout and "skipped" not in result.stdout


def test_a_service_without_testaccept_is_told_so(tmp_path: Path) -> None:
    service = copy_service(HELLOWORLD, tmp_path / "hw")
    result = run_macaron("test", "--acceptance", str(service))
    assert result.returncode == 1
    assert f"{service.resolve() / 'testaccept'}: no such folder" in result.stderr


def test_a_new_service_gets_its_black_box_tests_run(tmp_path: Path) -> None:
    created = run_macaron("new", "demoshop", "--path", str(tmp_path))
    assert created.returncode == 0, created.stdout + created.stderr
    result = run_macaron("test", "--acceptance", str(tmp_path / "demoshop"), "-v", timeout=120)  # -v goes to pytest
    assert result.returncode == 0, result.stdout + result.stderr
    assert "testaccept/test_hello.py::test_hello PASSED" in result.stdout
    # The scaffold's tests skip themselves without a server: here none may be skipped.
    assert "skipped" not in result.stdout and "failed" not in result.stdout
