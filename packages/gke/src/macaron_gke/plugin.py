"""The macaron plugin of macaron-gke: deploy targets ``gke`` and ``cloudrun``.

``gke`` is served by :mod:`macaron_gke.gke`; ``cloudrun`` by :mod:`macaron_gke.cloudrun`, imported only when that
target is used: its module provides ``deploy(service_path, config, options) -> dict`` and, optionally,
``deploy_options() -> list[click.Parameter]`` (its own command-line options, ``--canary``, ``--rollback``...).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from macaron import hookimpl
from macaron.deploying import DeployError

TARGETS = ["gke", "cloudrun"]


def _cloudrun() -> ModuleType:
    try:
        return importlib.import_module("macaron_gke.cloudrun")
    except ModuleNotFoundError as exc:
        if exc.name != "macaron_gke.cloudrun":
            raise
        raise DeployError("the cloudrun target is not in this version of macaron-gke yet (issue 13); nothing was deployed") from None


@hookimpl
def register_deploy_targets() -> list[str]:
    return list(TARGETS)


@hookimpl
def deploy_options(target: str) -> list[click.Parameter] | None:
    if target == "gke":
        from macaron_gke import gke

        return gke.deploy_options()
    if target == "cloudrun":
        try:
            module = _cloudrun()
        except DeployError:
            return []
        options = getattr(module, "deploy_options", None)
        return list(options()) if options is not None else []
    return None


@hookimpl
def on_deploy(target: str, service_path: Path, config: Any, options: dict[str, Any]) -> dict[str, Any] | None:
    if target == "gke":
        from macaron_gke import gke

        return gke.deploy(service_path, config, options)
    if target == "cloudrun":
        summary: dict[str, Any] = _cloudrun().deploy(service_path, config, options)
        return summary
    return None
