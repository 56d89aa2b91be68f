"""The monorepo's test layout: what a bare `pytest` runs is what `nox -s tests` runs, and it can all be collected."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; macaron supports 3.10, where this check is skipped
ROOT = Path(__file__).resolve().parents[1]


def test_bare_pytest_runs_every_package_tests_like_nox() -> None:
    configured = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"]
    # noxfile.py's tests session: every packages/*/tests folder, then tests/.
    expected = [f"{p.parent.relative_to(ROOT).as_posix()}/tests" for p in sorted(ROOT.glob("packages/*/pyproject.toml")) if (p.parent / "tests").is_dir()]
    assert configured == [*expected, "tests"]


def test_test_file_names_are_unique() -> None:
    """pytest imports test files without packages by their base name: two of one name and neither is collected."""
    names = Counter(path.name for folder in ("packages", "tests") for path in (ROOT / folder).rglob("test_*.py") if "fixtures" not in path.parts)
    assert [name for name, count in names.items() if count > 1] == []
