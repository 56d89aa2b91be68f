"""The docs' examples, run: what a reader copies from docs/ must work as printed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from macaron import create_app
from macaron.scaffold import scaffold
from macaron_cli import run_macaron

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def section(page: str, heading: str) -> str:
    """The text of one ``## heading`` section of a docs page, up to the next heading of that level."""
    text = (DOCS / page).read_text()
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + len(heading) + 2)
    return text[start : end if end != -1 else len(text)]


def blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang == language]


def console_output(text: str, command: str) -> str:
    """What a ``console`` block shows after ``$ command``, up to the next prompt or the block's end."""
    for block in blocks(text, "console"):
        lines = block.splitlines()
        if f"$ {command}" in lines:
            rest = lines[lines.index(f"$ {command}") + 1 :]
            end = next((i for i, line in enumerate(rest) if line.startswith("$ ")), len(rest))
            return "\n".join(rest[:end]) + "\n"
    raise AssertionError(f"no console block runs {command!r}")


def test_the_routes_example_is_what_macaron_routes_prints(tmp_path: Path) -> None:
    scaffold("bakery", tmp_path)
    result = run_macaron("routes", "bakery", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == console_output(section("cli.md", "## `macaron routes`"), "macaron routes bakery")


def test_the_plugin_and_its_tests_in_plugins_md_run(tmp_path: Path) -> None:
    """docs/plugins.md's greeter (Write a plugin) under the tests it shows (Test a plugin), run by pytest."""
    plugin = next(code for code in blocks(section("plugins.md", "## Write a plugin"), "python") if code.startswith("# macaron_greeter/plugin.py"))
    package = tmp_path / "src" / "macaron_greeter"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(plugin)
    tests = blocks(section("plugins.md", "## Test a plugin"), "python")
    assert len(tests) == 2
    (tmp_path / "test_greeter_from_docs.py").write_text("\n\n".join(tests))
    # src/ first on the path, so the docs' greeter shadows the installed test plugin of the same name.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_greeter_from_docs.py"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "src")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


CORE = ROOT / "packages" / "core" / "src" / "macaron"


def architecture_modules() -> set[str]:
    """The modules docs/architecture.md's table names (its first column), as paths below ``macaron/``."""
    table = section("architecture.md", "## The modules of macaron-core (`packages/core/src/macaron`)")
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row)}


def core_modules() -> set[str]:
    """Every module of macaron-core: ``x.py``, ``builtins/x.py``; a subpackage with code as ``name/``.

    An empty ``__init__.py`` only marks a package, so it is not a module the table must name.
    """
    modules = set()
    for path in CORE.rglob("*.py"):
        relative = path.relative_to(CORE)
        if any(part in {"template", "__pycache__"} for part in relative.parts) or not path.read_text().strip():
            continue
        if relative.name == "__init__.py" and relative.parent != Path("."):
            modules.add(f"{relative.parent.as_posix()}/")
        else:
            modules.add(relative.as_posix())
    return modules


def test_architecture_md_names_every_module_of_core_and_only_modules_that_exist() -> None:
    named, present = architecture_modules(), core_modules()
    assert not present - named, f"modules docs/architecture.md does not name: {sorted(present - named)}"
    assert not named - present, f"docs/architecture.md names modules that do not exist: {sorted(named - present)}"


def test_the_new_example_is_what_macaron_new_prints(tmp_path: Path) -> None:
    # The test run has pytest and macaron-unit, so no pip line comes first.
    result = run_macaron("new", "bakery", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == console_output(section("cli.md", "## `macaron new`"), "macaron new bakery")


def test_the_full_error_body_of_operations_md_is_what_the_scaffolds_fullest_error_gets(tmp_path: Path) -> None:
    """operations.md's full body, as the code writes it. (That the page's fullest Error is the scaffold's is
    packages/core/tests/test_error_bodies.py's test.)"""
    documented_body = json.loads(blocks(section("operations.md", "## Error bodies"), "json")[0])
    root = scaffold("docbodies", tmp_path)
    client = create_app(root).test_client()
    body = client.get("/v1/hello/Ada?shout=maybe").get_json()
    # A 400 has no user_message ("when the error has one"); every other field of the page's body is sent.
    assert set(body) == set(documented_body) - {"user_message"}
    assert set(body["errors"][0]) == set(documented_body["errors"][0])


def test_what_migrate_prints_on_pymacaron1_is_what_migrating_md_shows(tmp_path: Path) -> None:
    service = shutil.copytree(ROOT / "tests" / "fixtures" / "pymacaron1", tmp_path / "pymacaron1")
    git = ["git", "-c", "user.name=docs", "-c", "user.email=docs@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=service, check=True)
    subprocess.run([*git, "add", "-A"], cwd=service, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "PyMacaron"], cwd=service, check=True)
    result = run_macaron("migrate", cwd=service)
    assert result.returncode == 0, result.stderr
    # The page shows stdout's one line, then stderr's "to do" lines.
    assert result.stdout + result.stderr == console_output(section("migrating.md", "## What `macaron migrate` prints"), "macaron migrate")


def run_pytest_on(test_code: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_from_docs.py").write_text(test_code)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'pt'}", *args, "test_from_docs.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_black_box_tests_of_testing_md_pass_on_helloworld(tmp_path: Path) -> None:
    black_box = blocks(section("testing.md", "## Black-box tests"), "python")[0]
    assert black_box.startswith("# testaccept/test_questions.py")
    result = run_pytest_on(black_box, tmp_path, f"--macaron-service={ROOT / 'examples' / 'helloworld'}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_service_server_example_of_testing_md_runs() -> None:
    example = next(code for code in blocks(section("testing.md", "## Black-box tests"), "python") if "ServiceServer(" in code)
    # Its path is relative to the checkout's root, where the page's reader runs it.
    result = subprocess.run([sys.executable, "-c", example], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_macaron_test_case_of_testing_md_passes_on_helloworld(tmp_path: Path) -> None:
    test_case = blocks(section("testing.md", "## Coming from PyMacaron"), "python")[0]
    result = run_pytest_on(test_case, tmp_path, f"--macaron-service={ROOT / 'examples' / 'helloworld'}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_validate_examples_are_what_macaron_validate_prints(tmp_path: Path) -> None:
    text = section("cli.md", "## `macaron validate`")
    result = run_macaron("validate", "examples/helloworld", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == console_output(text, "macaron validate examples/helloworld")
    # The broken bakery of the page: its reverse operation names a function api.py does not have; the page's
    # service sits in /srv.
    root = scaffold("bakery", tmp_path)
    spec = root / "apis" / "bakery.yaml"
    spec.write_text(spec.read_text().replace("x-bind-server: bakery.api.reverse\n", "x-bind-server: bakery.api.reverse_text\n"))
    broken = run_macaron("validate", "bakery", cwd=tmp_path)
    assert broken.returncode == 1
    assert broken.stderr.replace(str(tmp_path), "/srv") == console_output(text, "macaron validate bakery")


def test_cli_md_names_every_command_of_macaron_help() -> None:
    result = run_macaron("--help")
    assert result.returncode == 0, result.stderr
    listing = result.stdout.split("Commands:\n", 1)[1]
    commands = {line.split()[0] for line in listing.splitlines() if line.startswith("  ") and line.split()}
    # greet is the example third-party plugin's (tests/plugin_package), installed for the tests only.
    missing = [name for name in sorted(commands - {"greet"}) if f"`macaron {name}" not in (DOCS / "cli.md").read_text()]
    assert not missing, f"docs/cli.md does not describe: {missing}"
