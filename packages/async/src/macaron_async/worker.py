"""``macaron worker [PATH]``: a Celery worker that loaded the service, so every task and model is known."""

from __future__ import annotations

import os
from pathlib import Path

import click

from macaron.cli import ENV_OPTION, SERVICE_PATH
from macaron_async.launching import LEVELS, load_for_celery, logging_receiver
from macaron_async.runtime import runtime

POOLS = ("prefork", "solo", "threads")


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
