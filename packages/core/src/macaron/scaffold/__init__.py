"""``macaron new NAME``: a working service folder from the templates in ``template/``.

Template files end in ``.tmpl`` (so the monorepo's linters and pytest leave them
alone); ``{{name}}`` in a file and ``__name__`` in a path become the service name,
``{{macaron_unit}}`` where to install macaron-unit from (see :func:`macaron_unit_source`),
and ``gitignore`` becomes ``.gitignore``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
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


def macaron_unit_source() -> str:
    """What ``pip install`` takes to get macaron-unit, which the black-box tests need.

    While the packages are unpublished a user installs macaron-core from a checkout of the monorepo
    (``pip install ./packages/core``, editable or not); pip records that folder in the distribution's
    ``direct_url.json`` (PEP 610), and macaron-unit is its sibling ``packages/unit``. Otherwise the
    index name.
    """
    try:
        recorded = importlib.metadata.distribution("macaron-core").read_text("direct_url.json")
        url = str(json.loads(recorded or "{}").get("url", ""))
    except (importlib.metadata.PackageNotFoundError, ValueError, AttributeError):
        url = ""
    if url.startswith("file://"):
        sibling = Path(url.removeprefix("file://")).parent / "unit"
        if (sibling / "pyproject.toml").is_file():
            return str(sibling)
    return "macaron-unit"


def tests_install_command(missing_only: bool = False) -> str | None:
    """The ``pip install`` line that makes the scaffold's tests run; with ``missing_only``, None when nothing is missing."""
    wanted = {"pytest": "pytest", "macaron_unit": macaron_unit_source()}
    if missing_only:
        wanted = {module: source for module, source in wanted.items() if importlib.util.find_spec(module) is None}
    return f"pip install {' '.join(wanted.values())}" if wanted else None


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
    values = {"{{name}}": name, "{{macaron_unit}}": macaron_unit_source()}
    try:
        for source in sorted(TEMPLATE.rglob("*.tmpl")):
            relative = source.relative_to(TEMPLATE).as_posix().removesuffix(".tmpl").replace("__name__", name)
            if relative == "gitignore":
                relative = ".gitignore"
            destination = staging / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            text = source.read_text()
            for placeholder, value in values.items():
                text = text.replace(placeholder, value)
            destination.write_text(text)
        if target.exists():
            raise ScaffoldError(f"{target}: already exists; macaron new does not overwrite anything")
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
