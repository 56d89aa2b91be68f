"""The running service: what :func:`macaron.app.load_service` loads, and how a Flask app finds it again.

A module of its own, below everything it names (imported for type checking only), so that
any module can ask for the service of an app (``macaron.config.get_config`` does) without
importing the start-up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    from macaron.config import Config
    from macaron.endpoint import Endpoint
    from macaron.error_bodies import Fit
    from macaron.model_factory import ModelFactory
    from macaron.models import ApiModels
    from macaron.plugins import MacaronPluginManager
    from macaron.spec import Api

EXTENSION = "macaron"  # the key of the Service in app.extensions: use service_of(app)


@dataclass
class Service:
    """A loaded service: its config, the APIs it serves and their models; once bound, its endpoints and app."""

    root: Path
    config: Config
    apis: dict[str, Api] = field(default_factory=dict)
    factories: dict[str, ModelFactory] = field(default_factory=dict)
    endpoints: list[Endpoint] = field(default_factory=list)
    plugin_manager: MacaronPluginManager | None = None
    app: Flask | None = None  # set by bind_service
    unrouted_fits: list[tuple[str, Fit]] = field(default_factory=list)  # set by bind_service: the Error of paths no operation serves

    @property
    def models(self) -> dict[str, ApiModels]:
        return {name: factory.models for name, factory in self.factories.items()}

    @property
    def name(self) -> str:
        return str(self.config.get("name", ""))

    @property
    def version(self) -> str:
        return str(os.environ.get("MACARON_VERSION") or self.config.get("version") or "local")


def service_of(app: Flask) -> Service:
    """The service that ``app`` serves; a LookupError if ``app`` was not made by macaron."""
    try:
        service: Service = app.extensions[EXTENSION]
    except KeyError:
        raise LookupError(f"Flask app '{app.name}' is not a macaron service (bind_service or create_app makes one)") from None
    return service


def current_service() -> Service:
    """The service answering the current request."""
    service: Service = current_app.extensions[EXTENSION]
    return service
