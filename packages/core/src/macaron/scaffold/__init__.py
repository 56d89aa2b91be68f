"""``macaron new NAME``: a working service folder from the templates in ``template/``.

Template files end in ``.tmpl`` (so the monorepo's linters and pytest leave them
alone); ``{{name}}`` in a file and ``__name__`` in a path become the service name,
and ``gitignore`` becomes ``.gitignore``.
"""

from __future__ import annotations

import importlib.util
import keyword
import os
import re
import shutil
import sys
from pathlib import Path

TEMPLATE = Path(__file__).with_name("template")
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*\Z")
# Folder names of the scaffold itself: a package with one of these names would be shadowed.
RESERVED = frozenset({"apis", "tests", "testaccept", "macaron", "conftest"})


class ScaffoldError(Exception):
    """The service cannot be created; the message says why."""


def check_name(name: str) -> None:
    """Refuse a name that cannot be the service's Python package, or would shadow another module."""
    if not NAME_PATTERN.match(name):
        raise ScaffoldError(
            f"'{name}' is not a valid service name: use lower-case letters, digits and underscores, "
            "starting with a letter (it becomes the name of the handlers' Python package)"
        )
    if keyword.iskeyword(name) or name in RESERVED:
        raise ScaffoldError(f"'{name}' is reserved: choose another service name")
    # The service folder goes first on sys.path when served, so its package would hide a module of the same name.
    if name in sys.stdlib_module_names or importlib.util.find_spec(name) is not None:
        raise ScaffoldError(f"'{name}' is already the name of an importable Python module: choose another service name")


def scaffold(name: str, parent: str | os.PathLike[str] = ".") -> Path:
    """Create the service folder ``parent/name`` and return its path.

    The folder appears complete or not at all: files are written in a temporary
    folder beside it, then renamed into place.
    """
    check_name(name)
    parent_path = Path(parent)
    if parent_path.exists() and not parent_path.is_dir():
        raise ScaffoldError(f"{parent_path}: not a folder")
    target = parent_path / name
    if target.exists():
        raise ScaffoldError(f"{target}: already exists; macaron new does not overwrite anything")
    parent_path.mkdir(parents=True, exist_ok=True)
    staging = parent_path / f".{name}.{os.getpid()}.new"
    staging.mkdir()
    try:
        for source in sorted(TEMPLATE.rglob("*.tmpl")):
            relative = source.relative_to(TEMPLATE).as_posix().removesuffix(".tmpl").replace("__name__", name)
            if relative == "gitignore":
                relative = ".gitignore"
            destination = staging / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(source.read_text().replace("{{name}}", name))
        if target.exists():
            raise ScaffoldError(f"{target}: already exists; macaron new does not overwrite anything")
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
