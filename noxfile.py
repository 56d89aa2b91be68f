"""Sessions for the whole monorepo: `nox -s tests`, `lint`, `acceptance`, `bench`, `serve`."""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = sorted(p.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("packages/*/pyproject.toml"))
# Installed like a third-party plugin (not editable) so the test run proves entry points work.
TEST_PLUGIN = "tests/plugin_package"

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True


def install_monorepo(session: nox.Session) -> None:
    session.install("-q", "-r", "requirements-dev.txt")
    # One pip call, so a package that depends on another of the monorepo (macaron-async on
    # macaron-core) finds it here instead of on an index.
    session.install("-q", *[arg for package in PACKAGES for arg in ("-e", package)])


@nox.session
def tests(session: nox.Session) -> None:
    """Every package editable in one venv, then pytest over all of them and tests/."""
    install_monorepo(session)
    if (ROOT / TEST_PLUGIN / "pyproject.toml").exists():
        session.install("-q", "--force-reinstall", "--no-deps", TEST_PLUGIN)
    session.run("python", "tests/support/system_packages.py")
    test_dirs = [f"{p}/tests" for p in PACKAGES if (ROOT / p / "tests").is_dir()] + ["tests"]
    session.run("pytest", *test_dirs, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and mypy over every package."""
    install_monorepo(session)
    session.run("ruff", "check", "packages", "tests", "bench", "examples", "noxfile.py")
    session.run("mypy", *[f"{p}/src" for p in PACKAGES])


@nox.session
def acceptance(session: nox.Session) -> None:
    """Every example's testaccept/ against the example served by a real gunicorn server (`macaron test --acceptance`)."""
    install_monorepo(session)
    examples = sorted(folder.parent for folder in ROOT.glob("examples/*/testaccept") if folder.is_dir())
    if not examples:
        session.error("no examples/*/testaccept/ to run")
    for example in examples:
        session.run("macaron", "test", "--acceptance", str(example.relative_to(ROOT)), *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: macaron against bare Flask in the same run; prints the ratios."""
    install_monorepo(session)
    session.run("python", "bench/run.py", *session.posargs)


@nox.session
def serve(session: nox.Session) -> None:
    """Serve the example service on http://127.0.0.1:8080 (Ctrl-C stops it)."""
    session.install("-q", "-e", "packages/core")
    session.run("macaron", "serve", "examples/helloworld", *session.posargs)
