"""macaron: spec-first microservices. An OpenAPI spec in, a validated Flask service out."""

from __future__ import annotations

from importlib import metadata

from macaron.app import bind_service, create_app, current_service, load_service, service_of
from macaron.config import get_config
from macaron.errors import MacaronException, add_error
from macaron.hookspecs import hookimpl
from macaron.models import Model, apis
from macaron.startup import StartupError

try:
    __version__ = metadata.version("macaron-core")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "MacaronException",
    "Model",
    "StartupError",
    "__version__",
    "add_error",
    "apis",
    "bind_service",
    "create_app",
    "current_service",
    "get_config",
    "hookimpl",
    "load_service",
    "service_of",
]
