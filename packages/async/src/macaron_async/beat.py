"""``macaron beat [PATH]``: Celery beat for the service, which queues its periodic tasks on time for the workers.

Only one beat may run per service, or every scheduled run would be queued
twice. With a Redis broker, beat holds a lock in Redis (``macaron:beat:<service>``),
renewed before it sends anything; a second beat refuses to start and names the
holder. Beat keeps its state (when each task last ran) in a file of its own,
never in the current folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from macaron.cli import ENV_OPTION, SERVICE_PATH
from macaron.config import ConfigError
from macaron_async.launching import LEVELS, load_for_celery, logging_receiver
from macaron_async.periodic import Periodic, periodic_tasks

if TYPE_CHECKING:
    import redis
    from celery import Celery
    from flask import Flask
    from kombu.connection import Connection

    from macaron_async.settings import AsyncSettings

log = logging.getLogger("macaron.async")

LOCK_PREFIX = "macaron:beat:"


class BeatLockHeld(Exception):
    """Another beat of the service holds the lock."""

    def __init__(self, key: str, holder: str) -> None:
        super().__init__(holder)
        self.key = key
        self.holder = holder


class BeatLock:
    """The Redis lock that lets one beat run per service: taken at start, renewed by the running beat, gone when it stops.

    Its value says who holds it (host, process id, start time), for the message
    of a second beat. A beat that dies without releasing it holds it until it
    expires, ``timeout`` seconds after its last renewal.
    """

    def __init__(self, client: redis.Redis, key: str, timeout: float, connection: Connection | None = None) -> None:
        self.client = client
        self.key = key
        self.timeout = timeout
        started = datetime.now(timezone.utc)
        self.holder = f"{socket.gethostname()} pid {os.getpid()} since {started:%Y-%m-%d %H:%M:%S} UTC ({uuid.uuid4().hex[:8]})"
        self.lost = False
        self._lock = client.lock(key, timeout=timeout, blocking=False, thread_local=False)
        self._connection = connection
        self._renewed = 0.0

    @classmethod
    def for_service(cls, app: Celery, service_name: str, timeout: float) -> BeatLock:
        """The lock of a service, in the broker's Redis database (through kombu, so every Redis URL form and option works)."""
        connection = app.connection_for_write()
        with connection.default_channel.conn_or_acquire() as client:
            return cls(client, LOCK_PREFIX + service_name, timeout, connection)

    def acquire(self) -> None:
        """Take the lock, or raise BeatLockHeld naming the beat that holds it."""
        for _ in range(3):  # the holder may release it between our attempt and our look
            if self._lock.acquire(token=self.holder):
                self._renewed = time.monotonic()
                return
            holder = self.client.get(self.key)
            if holder is not None:
                raise BeatLockHeld(self.key, holder.decode(errors="replace") if isinstance(holder, bytes) else str(holder))
        raise BeatLockHeld(self.key, "another beat (it keeps taking and releasing the lock)")

    def renew(self) -> bool:
        """Before sending: True if this beat holds the lock (renewed, or taken again after it expired unclaimed).

        False if Redis cannot be reached (send nothing now, try again soon).
        Raises BeatLockHeld if another beat took it meanwhile.
        """
        import redis

        if time.monotonic() - self._renewed < min(1.0, self.timeout / 6):
            return True
        try:
            try:
                self._lock.reacquire()
            except redis.exceptions.LockNotOwnedError:
                if not self._lock.acquire(token=self.holder):
                    self.lost = True
                    holder = self.client.get(self.key)
                    raise BeatLockHeld(self.key, holder.decode(errors="replace") if isinstance(holder, bytes) else "another beat") from None
                log.warning("beat: the lock %s had expired (was this process paused, or Redis restarted?); this beat took it again", self.key)
        except redis.exceptions.RedisError as exc:
            log.warning("beat: cannot renew the lock %s (%s: %s); sending nothing until Redis answers", self.key, type(exc).__name__, exc)
            return False
        self._renewed = time.monotonic()
        return True

    def release(self) -> None:
        """Let another beat start (nothing happens if this beat no longer holds the lock)."""
        import redis

        try:
            self._lock.release()
        except redis.exceptions.LockError:  # expired, or taken by another beat: not ours to delete
            pass
        except redis.exceptions.RedisError as exc:
            log.warning("beat: could not release the lock %s (%s); it expires in %g s", self.key, exc, self.timeout)


# The lock of this process's beat, taken by the command before Celery starts beat (and inherited by the process
# of a worker's embedded beat). Celery builds the scheduler from a class name, so it cannot be handed over otherwise.
_guard: BeatLock | None = None


def state_file(settings: AsyncSettings, service_name: str, root: Path, state_dir: str | None = None) -> Path:
    """Where beat keeps when each task last ran: ``<state_dir>/<service>.beat``.

    ``state_dir`` is the command's ``--state-dir``, else ``async.beat_state_dir``
    (relative to the service folder), else a folder of this user's under the
    temp folder, where the file name also carries a digest of the service folder
    and broker, so that two services or two deployments never share a file.
    """
    if state_dir is not None:
        folder = Path(state_dir).expanduser().resolve()
    elif settings.beat_state_dir is not None:
        folder = (root / Path(settings.beat_state_dir).expanduser()).resolve()
    else:
        from kombu.utils.url import maybe_sanitize_url

        uid = os.getuid() if hasattr(os, "getuid") else 0
        folder = Path(tempfile.gettempdir()) / f"macaron-beat-{uid}"
        folder.mkdir(mode=0o700, exist_ok=True)
        status = folder.stat()
        # The state is a pickle: a folder that another user can write to would let that user run code as this one.
        if hasattr(os, "getuid") and (status.st_uid != uid or status.st_mode & 0o077):
            raise ConfigError(f"{folder}: beat's state folder must belong to this user only (mode 700): set async.beat_state_dir")
        digest = hashlib.sha256(f"{root}\n{maybe_sanitize_url(settings.broker_url)}".encode()).hexdigest()[:10]
        return folder / f"{service_name}-{digest}.beat"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"beat's state folder {folder} cannot be created: {exc}") from None
    return folder / f"{service_name}.beat"


def prepare_beat(app: Celery, settings: AsyncSettings, service_name: str, periodic: list[Periodic], state: Path) -> BeatLock | None:
    """Put the periodic tasks on the Celery app, and take the service's beat lock (None for a broker without one).

    Raises BeatLockHeld when another beat runs.
    """
    global _guard
    app.conf.update(
        beat_schedule={
            item.name: {
                "task": item.task.name,
                "schedule": item.schedule.celery_schedule(app),
                "args": [item.args, item.kwargs],  # the call context is added to each run when it is sent
                "options": {
                    "queue": item.task.queue or settings.queue,
                    "argsrepr": repr(tuple(item.args)),
                    "kwargsrepr": repr(item.kwargs),
                },
            }
            for item in periodic
        },
        beat_scheduler="macaron_async.scheduler:MacaronScheduler",
        beat_schedule_filename=str(state),
        # Beat renews its lock at least this often, so that the lock outlives every pause between two ticks.
        beat_max_loop_interval=min(300.0, settings.beat_lock_timeout / 3),
    )
    _guard = None
    if not settings.is_redis:
        return None
    try:
        lock = BeatLock.for_service(app, service_name, settings.beat_lock_timeout)
        lock.acquire()
    except BeatLockHeld:
        raise
    except Exception as exc:  # kombu's OperationalError, redis-py's errors: the broker cannot be reached
        from kombu.utils.url import maybe_sanitize_url

        raise ConfigError(
            f"beat cannot take its lock in the broker {maybe_sanitize_url(settings.broker_url)}: {type(exc).__name__}: {exc}"
        ) from None
    _guard = lock
    return lock


def beat_summary(
    service_name: str, settings: AsyncSettings, periodic: list[Periodic], state: Path, lock: BeatLock | None, scheduler: Any = None
) -> list[str]:
    """What beat logs at start: its lock, its state file, and its tasks with their next run (from ``scheduler``'s state if given)."""
    now = datetime.now(timezone.utc)
    zone = ZoneInfo(settings.timezone)
    lines = [f"beat of {service_name}: {len(periodic)} periodic task(s), times in {settings.timezone}; state in {state}"]
    if lock is not None:
        lines.append(f"beat: holds the lock {lock.key} as {lock.holder} (a second beat is refused; it expires {lock.timeout:g} s after a crash)")
    else:
        lines.append("beat: the broker is not Redis, so nothing stops a second beat: run exactly one for this service")
    for item in periodic:
        try:  # the state knows better: a run missed while beat was stopped is due now
            due, seconds = scheduler.schedule[item.name].is_due()
            when = now if due else now + timedelta(seconds=seconds)
        except Exception:  # no scheduler or no state for the entry: the schedule alone
            when = item.schedule.next_run(now, settings.timezone)
        lines.append(f"beat: {item} (from {item.source}), next at {when.astimezone(zone):%Y-%m-%d %H:%M:%S %Z}")
    if not periodic:
        lines.append("beat: no periodic task: declare them with @asynctask(every=...) or cron=..., or in async.schedule")
    return lines


def held_message(held: BeatLockHeld, service_name: str, timeout: float) -> str:
    return (
        f"another beat already runs for the service {service_name}: {held.holder} holds the lock {held.key}. "
        f"Only one beat may run per service (two would queue every periodic task twice): stop that one first; "
        f"if it died, its lock expires within {timeout:g} s"
    )


def _summary_logger(service_name: str, settings: AsyncSettings, periodic: list[Periodic], state: Path, lock: BeatLock | None) -> Any:
    """A receiver of beat_init (sent once logging is set up and the state is open) that logs the summary."""

    def log_summary(sender: Any = None, **_: Any) -> None:
        for line in beat_summary(service_name, settings, periodic, state, lock, getattr(sender, "scheduler", None)):
            log.info("%s", line)

    return log_summary


def _exit_on_sigterm(**_: Any) -> None:
    """In a worker's embedded beat process: SIGTERM stops beat cleanly (state saved, lock released)."""

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


@click.command("beat")
@SERVICE_PATH
@ENV_OPTION
@click.option("-l", "--loglevel", type=click.Choice(LEVELS, case_sensitive=False), default="info", show_default=True, help="info logs each run sent.")
@click.option("-s", "--state-dir", default=None, help="Folder of beat's state file (default: async.beat_state_dir, else a private temp folder).")
def beat(path: Path, env: str | None, loglevel: str, state_dir: str | None) -> None:
    """Queue the periodic tasks of the service in PATH (default: the current folder), on time, for its workers.

    Run exactly one beat per service, beside the workers: with a Redis broker a
    second one refuses to start. The tasks are declared with
    @asynctask(every=... or cron=...) and in async.schedule.
    """
    app, settings, celery_app, where = load_for_celery(path, env, "beat")
    lock = setup_beat(app, settings, celery_app, where, state_dir)
    from celery import signals

    from macaron.app import service_of

    config = service_of(app).config
    signals.setup_logging.connect(logging_receiver(str(config.get("log_format") or "text").lower()), weak=False)
    try:
        celery_app.Beat(loglevel=loglevel.upper(), quiet=True).run()
    finally:
        if lock is not None:
            lock.release()
    if lock is not None and lock.lost:
        raise click.ClickException(f"beat stopped: another beat took the lock {lock.key}, so this one stopped sending")


def setup_beat(app: Flask, settings: AsyncSettings, celery_app: Celery, where: str, state_dir: str | None = None, embedded: bool = False) -> BeatLock | None:
    """Find the periodic tasks, put them on Celery and take the beat lock; ClickException when beat cannot run.

    ``embedded``: beat runs in a process of a worker (``macaron worker --beat``).
    """
    from macaron.app import service_of
    from macaron_async.runtime import runtime

    service_name = runtime.service_name
    try:
        periodic = periodic_tasks(settings, where)
        state = state_file(settings, service_name, service_of(app).root, state_dir)
        lock = prepare_beat(celery_app, settings, service_name, periodic, state)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except BeatLockHeld as held:
        raise click.ClickException(held_message(held, service_name, settings.beat_lock_timeout)) from None
    from celery import signals

    if embedded:
        signals.beat_embedded_init.connect(_exit_on_sigterm, weak=False)
    signals.beat_init.connect(_summary_logger(service_name, settings, periodic, state, lock), weak=False)
    return lock
