"""Write small services (macaron.yaml, apis/<api>.yaml, a handler module) and build their apps.

Handler modules are imported by name, so every service gets a module name of its
own: the text ``HANDLERS`` in a spec or extra file is replaced by that name.
"""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml
from flask import Flask
from flask.testing import FlaskClient

from macaron import create_app
from macaron.plugins import get_plugin_manager

_counter = itertools.count()

HEADER = """\
swagger: '2.0'
info: {title: test, version: '1'}
produces: [application/json]
consumes: [application/json]
"""


class ServiceMaker:
    """Writes service folders under a temporary directory and builds their Flask apps."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.modules: list[str] = []
        self.roots: list[str] = []

    def write(
        self,
        spec: str,
        handlers: str = "",
        *,
        config: dict[str, Any] | None = None,
        api: str = "x",
        files: dict[str, str] | None = None,
        header: bool = True,
        suffix: str = ".yaml",
    ) -> Path:
        """A service folder; ``spec`` is YAML (``header`` prepends swagger/info/produces/consumes)."""
        module = f"handlers_{next(_counter)}_{id(self) % 100000}"
        self.modules.append(module)
        root = self.tmp_path / f"service_{module}"
        (root / "apis").mkdir(parents=True)
        (root / "macaron.yaml").write_text(yaml.safe_dump({"name": "test-service", **(config or {})}))
        text = textwrap.dedent(spec).replace("HANDLERS", module)
        if header and suffix != ".json":
            text = HEADER + text
        (root / "apis" / f"{api}{suffix}").write_text(text)
        if handlers is not None:
            (root / f"{module}.py").write_text(textwrap.dedent(handlers).replace("HANDLERS", module))
        for name, content in (files or {}).items():
            target = root / name.replace("HANDLERS", module)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(content).replace("HANDLERS", module))
        self.roots.append(str(root))
        return root

    def build(self, root: Path, plugins: tuple[Any, ...] = ()) -> Flask:
        pm = get_plugin_manager(load_entrypoints=False)
        for plugin in plugins:
            pm.register_plugin(plugin)
        app = create_app(root, plugin_manager=pm)
        app.testing = True
        return app

    def app(self, spec: str, handlers: str = "", *, plugins: tuple[Any, ...] = (), **kwargs: Any) -> Flask:
        return self.build(self.write(spec, handlers, **kwargs), plugins)

    def client(self, spec: str, handlers: str = "", **kwargs: Any) -> FlaskClient:
        return self.app(spec, handlers, **kwargs).test_client()

    def cleanup(self) -> None:
        for module in self.modules:
            for name in [n for n in sys.modules if n == module or n.startswith(module + ".")]:
                del sys.modules[name]
        sys.path[:] = [p for p in sys.path if p not in self.roots]
