"""Built-in ``/ping`` and ``/version``, served from their own small spec like any user API.

``ping_hook`` in the config names functions that ``/ping`` calls, so that a load
balancer's health check sees what the service depends on (a database, a queue):
one that raises, or returns False, makes ``/ping`` answer 503.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask

from macaron.config import Config, get_config, import_callables
from macaron.errors import MacaronException
from macaron.hookspecs import hookimpl

SPEC = Path(__file__).with_name("ping.yaml")
BUILTINS = SPEC.resolve().parent
MEMO = "macaron.ping_hooks"

log = logging.getLogger("macaron.ping")


class ServiceUnavailable(MacaronException):
    """A ``ping_hook`` found the service unable to serve: 503, so a load balancer takes it out of rotation."""

    code = "SERVICE_UNAVAILABLE"
    status = 503


def ping_hooks(config: Config) -> list[tuple[str, Callable[..., Any]]]:
    """The functions ``ping_hook`` names (one dotted path or a list), imported once."""
    return import_callables(config, "ping_hook")


@hookimpl
def register_apis(config: Config) -> list[Path]:
    return [SPEC]


@hookimpl
def startup(app: Flask, config: Config) -> None:
    config.memo(MEMO, ping_hooks)  # a ping_hook that cannot be imported stops start-up, not the first health check


def ping() -> dict[str, Any]:
    for name, hook in get_config().memo(MEMO, ping_hooks):
        try:
            healthy = hook()
        except Exception as exc:
            # The reason goes to the log, not to whoever can reach /ping.
            log.warning("ping_hook %s failed: %s: %s", name, type(exc).__name__, exc, exc_info=exc)
            raise ServiceUnavailable(f"health check {name} failed") from None
        if healthy is False:
            log.warning("ping_hook %s says the service is unhealthy", name)
            raise ServiceUnavailable(f"health check {name} failed")
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
