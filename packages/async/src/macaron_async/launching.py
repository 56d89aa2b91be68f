"""What ``macaron worker`` and ``macaron beat`` share at start: the service loaded, its Celery app, logging like the web process."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from macaron.config import ConfigError
from macaron_async.runtime import runtime
from macaron_async.settings import AsyncSettings, settings_from_config
from macaron_async.tasks import current_task

if TYPE_CHECKING:
    from celery import Celery
    from flask import Flask

LEVELS = ("debug", "info", "warning", "error", "critical")


class TaskFilter(logging.Filter):
    """Puts the running task's name and id on each record (JSON lines show them; ``-`` outside a task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        task = current_task()
        record.task_name = task.name if task is not None else "-"
        record.task_id = (task.id or "-") if task is not None else "-"
        return True


def logging_receiver(log_format: str) -> Callable[..., None]:
    """A receiver of Celery's setup_logging: the worker logs like the web process (macaron.log), not like Celery."""

    def setup(loglevel: int | str | None = None, **_: Any) -> None:
        from macaron.log import setup_logging

        level = logging.getLevelName(loglevel).lower() if isinstance(loglevel, int) else (loglevel or "warning").lower()
        handler = setup_logging(level, log_format)
        if handler is not None:
            handler.addFilter(TaskFilter())

    return setup


def load_for_celery(path: Path, env: str | None, command: str) -> tuple[Flask, AsyncSettings, Celery, str]:
    """The service loaded as the web server loads it, its async settings, its Celery app, and its macaron.yaml path for messages."""
    from macaron.cli import load_for_command

    service = load_for_command(path, env)
    app, config = service.app, service.config
    assert app is not None
    where = f"{Path(path).resolve() / 'macaron.yaml'}"
    if runtime.flask_app is not app:  # the async plugin's startup hook did not run (disabled in this manager)
        try:
            runtime.configure(settings_from_config(config, where), app, config.get("name"))
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
    settings = runtime.settings
    if settings is None or runtime.celery is None:
        needs = "no worker is needed" if command == "worker" else "periodic tasks do not run (they need a broker, a worker and macaron beat)"
        raise click.ClickException(f"{where}: async.mode is inprocess, so tasks run in the web process and {needs} (set async.mode: celery)")
    return app, settings, runtime.celery, where
