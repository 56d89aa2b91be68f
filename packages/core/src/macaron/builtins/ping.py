"""Built-in ``/ping`` and ``/version``, served from their own small spec like any user API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from macaron.config import Config
from macaron.hookspecs import hookimpl

SPEC = Path(__file__).with_name("ping.yaml")
BUILTINS = SPEC.resolve().parent


@hookimpl
def register_apis(config: Config) -> list[Path]:
    return [SPEC]


def ping() -> dict[str, Any]:
    return {}


def version() -> dict[str, Any]:
    from macaron.app import current_service

    service = current_service()
    return {
        "name": service.name,
        "version": service.version,
        "env": service.config.env or "",
        "apis": sorted(name for name, api in service.apis.items() if api.file.parent != BUILTINS),  # the service's own
    }
