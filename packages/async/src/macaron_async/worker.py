"""``macaron worker [PATH]``: a Celery worker that loaded the service, so every task and model is known."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from macaron.cli import ENV_OPTION, SERVICE_PATH
from macaron.config import ConfigError
from macaron_async.runtime import runtime

LEVELS = ("debug", "info", "warning", "error", "critical")
POOLS = ("prefork", "solo", "threads")

if TYPE_CHECKING:
    from celery import Celery
    from flask import Flask

    from macaron_async.settings import AsyncSettings


class TaskFilter(logging.Filter):
    """Puts the running task's name and id on each record (JSON lines show them; ``-`` outside a task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from macaron_async.tasks import current_task

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


def worker_argv(
    queues: str,
    loglevel: str,
    pool: str,
    hostname: str,
    concurrency: int | None = None,
    max_tasks_per_child: int | None = None,
    mingle: bool = False,
    beat: bool = False,
) -> list[str]:
    argv = ["worker", f"--loglevel={loglevel.upper()}", f"--queues={queues}", f"--pool={pool}", f"--hostname={hostname}"]
    if beat:
        argv.append("--beat")
    if not mingle:
        # Mingle and gossip sync revoked ids and clocks between workers: a second of start-up and steady broker
        # traffic, which macaron's tasks (revoked by nobody) do not need.
        argv += ["--without-mingle", "--without-gossip"]
    if concurrency is not None:
        argv.append(f"--concurrency={concurrency}")
    if max_tasks_per_child is not None:
        argv.append(f"--max-tasks-per-child={max_tasks_per_child}")
    return argv


def load_for_celery(path: Path, env: str | None, command: str) -> tuple[Flask, AsyncSettings, Celery, str]:
    """The service loaded as the web server loads it, its async settings, its Celery app, and its macaron.yaml path for messages."""
    from macaron.cli import load_for_command

    service = load_for_command(path, env)
    app, config = service.app, service.config
    assert app is not None
    where = f"{Path(path).resolve() / 'macaron.yaml'}"
    if runtime.flask_app is not app:  # the async plugin's startup hook did not run (disabled in this manager)
        from macaron_async.settings import settings_from_config

        try:
            runtime.configure(settings_from_config(config, where), app, config.get("name"))
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
    settings = runtime.settings
    if settings is None or runtime.celery is None:
        needs = "no worker is needed" if command == "worker" else "periodic tasks do not run (they need a broker, a worker and macaron beat)"
        raise click.ClickException(f"{where}: async.mode is inprocess, so tasks run in the web process and {needs} (set async.mode: celery)")
    return app, settings, runtime.celery, where


@click.command("worker")
@SERVICE_PATH
@ENV_OPTION
@click.option("-c", "--concurrency", type=click.IntRange(min=1), default=None, help="Tasks run at once (default: the number of CPUs).")
@click.option("-Q", "--queues", default=None, help="Comma-separated queues to take tasks from (default: async.queue, the service's name).")
@click.option("-l", "--loglevel", type=click.Choice(LEVELS, case_sensitive=False), default="warning", show_default=True)
@click.option("-P", "--pool", type=click.Choice(POOLS), default="prefork", show_default=True, help="prefork: processes; solo: one task at a time.")
@click.option("-n", "--hostname", default=None, help="Node name (default: <service>-<pid>@<host>).")
@click.option("--max-tasks-per-child", type=click.IntRange(min=1), default=None, help="Replace a pool process after this many tasks.")
@click.option("--mingle", is_flag=True, help="Sync with other workers at start-up and gossip with them (Celery's mingle and gossip).")
@click.option("-B", "--beat", is_flag=True, help="Also run beat (the periodic tasks) in this worker: for development; in production run one `macaron beat`.")
def worker(
    path: Path,
    env: str | None,
    concurrency: int | None,
    queues: str | None,
    loglevel: str,
    pool: str,
    hostname: str | None,
    max_tasks_per_child: int | None,
    mingle: bool,
    beat: bool,
) -> None:
    """Run the tasks of the service in PATH (default: the current folder) with a Celery worker.

    The worker loads the service like the web server does (config, specs,
    handler modules, hence every @asynctask), then takes tasks from the broker
    named by async.broker_url. Start as many as you need, on any machine that
    reaches the broker; the web server never starts one.
    """
    app, settings, celery_app, where = load_for_celery(path, env, "worker")
    lock = None
    if beat:
        from macaron_async.beat import setup_beat

        lock = setup_beat(app, settings, celery_app, where, embedded=True)
    from celery import signals

    from macaron.app import service_of

    config = service_of(app).config

    # Connecting a receiver stops Celery from configuring logging (and from redirecting stdout to it).
    log_format = str(config.get("log_format") or "text").lower()
    signals.setup_logging.connect(logging_receiver(log_format), weak=False)
    name = hostname or f"{runtime.service_name}-{os.getpid()}@%h"
    try:
        celery_app.worker_main(worker_argv(queues or settings.queue, loglevel, pool, name, concurrency, max_tasks_per_child, mingle, beat))
    finally:
        if lock is not None:  # the embedded beat released it when it stopped cleanly; if it died, this does
            lock.release()
