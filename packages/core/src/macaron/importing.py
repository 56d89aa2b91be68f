"""One resolver for the dotted paths that specs and configs name: ``package.module.function``."""

from __future__ import annotations

import importlib
from typing import Any


class DottedPathError(ImportError):
    """A dotted path that names nothing usable; ``reason`` says why, in words a start-up error can quote."""

    def __init__(self, dotted: object, reason: str, *, malformed: bool = False) -> None:
        self.dotted = dotted
        self.reason = reason
        self.malformed = malformed  # not a dotted path at all, rather than one naming nothing
        super().__init__(f"'{dotted}': {reason}")

    def describe(self, what: str) -> str:
        """The problem for ``what`` names the path (``handler``, ``jwt_revoked``...): ``handler 'a.b': no module named 'a'``."""
        if self.malformed:
            return f"{what} {self.dotted!r} {self.reason}"
        return f"{what} '{self.dotted}': {self.reason}"


def import_object(dotted: object, *, function: bool = False) -> Any:
    """What ``package.module.name`` names, its module imported; with ``function``, it must be callable.

    Raises :class:`DottedPathError`: not a dotted path, no such module, the module failed
    to import (its exception quoted), or no such name in it.
    """
    module_name, _, attribute = dotted.rpartition(".") if isinstance(dotted, str) else ("", "", "")
    if not module_name or not attribute:
        raise DottedPathError(dotted, "must be a dotted path: package.module.function", malformed=True)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise DottedPathError(dotted, f"no module named '{exc.name}'") from exc
        raise DottedPathError(dotted, f"importing {module_name} failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise DottedPathError(dotted, f"importing {module_name} failed: {type(exc).__name__}: {exc}") from exc
    target = getattr(module, attribute, None)
    if target is None or (function and not callable(target)):
        raise DottedPathError(dotted, f"module {module_name} has no {'function' if function else 'name'} '{attribute}'")
    return target
