"""The macaron plugin of macaron-async (entry point ``async`` in group ``macaron``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from macaron.hookspecs import hookimpl
from macaron_async.periodic import periodic_tasks
from macaron_async.runtime import runtime
from macaron_async.settings import settings_from_config

if TYPE_CHECKING:
    import click
    from flask import Flask

    from macaron.config import Config

log = logging.getLogger("macaron.async")


@hookimpl
def register_commands(cli: click.Group) -> None:
    from macaron_async.beat import beat
    from macaron_async.worker import worker

    cli.add_command(worker)
    cli.add_command(beat)


@hookimpl
def startup(app: Flask, config: Config) -> None:
    """Read the ``async`` section and the periodic tasks (a bad one stops start-up), and say once where tasks will run."""
    where = str(config.root / "macaron.yaml") if config.root is not None else "the configuration"
    settings = settings_from_config(config, where)
    runtime.configure(settings, app, config.get("name"))
    periodic = periodic_tasks(settings, where)  # tasks of async.schedule found, their arguments checked
    if settings.inprocess:
        log.warning("async: mode inprocess: tasks run in this web process after each response is sent (no broker, no worker; for development)")
        if periodic:
            log.warning("async: mode inprocess: the %d periodic task(s) do not run (they need mode celery, a worker and macaron beat)", len(periodic))
    elif log.isEnabledFor(logging.INFO):
        from kombu.utils.url import maybe_sanitize_url

        log.info("async: tasks go to %s, queue %s; run them with: macaron worker", maybe_sanitize_url(settings.broker_url), settings.queue)
        if periodic:
            log.info("async: %d periodic task(s); run exactly one `macaron beat` to queue them", len(periodic))
