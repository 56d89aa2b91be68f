"""The helper that finds import cycles: it sees lazy imports, skips TYPE_CHECKING ones, resolves relative ones."""

from __future__ import annotations

from pathlib import Path

from import_graph import cycles, import_graph


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_lazy_import_closes_a_cycle_and_a_type_checking_one_does_not(tmp_path: Path) -> None:
    src = write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg import b\n",
        "pkg/b.py": "def f():\n    from pkg.a import x\n",
        "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\nfrom . import b\n",
    })
    graph = import_graph(src)
    assert graph["pkg.c"] == {"pkg.b"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_cycle(tmp_path: Path) -> None:
    src = write(tmp_path, {"pkg/__init__.py": "from .a import x\n", "pkg/a.py": "import os\nx = 1\n"})
    assert cycles(import_graph(src)) == []
