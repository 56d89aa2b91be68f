"""The process's task runtime: the Celery app built from the ``async`` settings, or the in-process runner."""

from __future__ import annotations

import atexit
import heapq
import importlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import after_this_request, has_request_context

from macaron.config import ConfigError
from macaron_async.registry import registered_tasks, task_named
from macaron_async.settings import AsyncSettings, settings_from_config

if TYPE_CHECKING:
    from celery import Celery, Task
    from flask import Flask, Response

    from macaron_async.tasks import AsyncTask

log = logging.getLogger("macaron.async")

# Settings Celery must have for the guarantees macaron-async documents; async.celery may still override them.
RELIABLE = {
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],
    "task_acks_late": True,  # acknowledged after the task ran, so a task whose worker dies is delivered again
    "task_reject_on_worker_lost": True,  # a killed pool process puts its task back on the queue
    "broker_connection_retry_on_startup": True,
}


class RetryLater(Exception):
    """Raised by :meth:`AsyncTask.invoke` when a declared exception may be retried after ``countdown`` seconds."""

    def __init__(self, exception: BaseException, countdown: float) -> None:
        super().__init__(str(exception))
        self.exception = exception
        self.countdown = countdown


def schedule_after_response(submit: Callable[[], None]) -> None:
    """Run ``submit`` once the current response has been sent (in a request), else now."""
    if not has_request_context():
        submit()
        return

    def register(response: Response) -> Response:
        response.call_on_close(submit)
        return response

    after_this_request(register)


def build_celery(settings: AsyncSettings, name: str) -> Celery:
    """A Celery app for these settings, with no task yet."""
    from celery import Celery

    app = Celery(f"macaron-{name}", set_as_current=False, fixups=[])
    transport: dict[str, Any] = {}
    if settings.is_redis:
        # Redis has no acknowledgements: kombu keeps delivered messages in an "unacked" hash and puts back
        # those older than visibility_timeout. Sweep often enough that a dead worker's tasks come back soon
        # after the timeout (kombu's default sweep runs about every 100 s).
        transport = {
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": settings.sweep_interval,
            "unacked_restore_throttle": 1,
            # A sweep holds a lock in Redis; a worker killed during its sweep leaves it held until it expires,
            # and kombu's 5-minute expiry would keep every worker from recovering tasks that long. Restores are
            # transactions in Redis, so an expired lock is harmless: two sweeps cannot restore a task twice.
            "unacked_mutex_expire": settings.sweep_lock_expiry,
        }
    extra = dict(settings.celery)
    transport.update(extra.pop("broker_transport_options", None) or {})
    app.conf.update(
        broker_url=settings.broker_url,
        result_backend=settings.result_backend,
        task_ignore_result=settings.result_backend is None,
        task_default_queue=settings.queue,
        timezone=settings.timezone,  # of cron schedules; times in messages stay UTC
        enable_utc=True,
        worker_prefetch_multiplier=settings.prefetch_multiplier,
        broker_transport_options=transport,
        **RELIABLE,
    )
    app.conf.update(extra)
    return app


def _celery_body(task_name: str) -> Callable[..., Any]:
    """What the worker runs for one task: look the task up (a reloaded module replaces it) and invoke it."""

    def body(self: Task, args: list[Any], kwargs: dict[str, Any], context: dict[str, Any] | None = None) -> Any:
        task = task_named(task_name)
        try:
            return task.invoke(args, kwargs, context, self.request.id, self.request.retries)
        except RetryLater as retry:
            shown = {key: value for key in ("argsrepr", "kwargsrepr") if (value := getattr(self.request, key, None))}
            raise self.retry(exc=retry.exception, countdown=retry.countdown, max_retries=task.retries, **shown) from None

    return body


class InProcessRunner:
    """One background thread of the web process that runs queued tasks in order, each when its delay is over.

    For development without a broker: tasks queued here are lost if the process
    exits before running them (at exit it waits up to 5 s for those already due).
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def submit(self, job: Callable[[], None], delay: float = 0.0) -> None:
        if self._pid != os.getpid():  # forked (a gunicorn worker): the parent's thread and lock are not ours
            self.__init__()  # type: ignore[misc]
        with self._condition:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._order), job))
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="macaron-async-inprocess", daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def _loop(self) -> None:
        while True:
            with self._condition:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._condition.wait(timeout=(self._heap[0][0] - time.monotonic()) if self._heap else None)
                _, _, job = heapq.heappop(self._heap)
            try:
                job()
            except Exception:  # invoke() reported it already; keep the thread alive
                log.debug("in-process task failed", exc_info=True)
            finally:
                with self._condition:
                    self._pending -= 1
                    self._condition.notify_all()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued task has run (True) or ``timeout`` seconds passed (False)."""
        with self._condition:
            return self._condition.wait_for(lambda: self._pending == 0, timeout=timeout)

    @property
    def pending(self) -> int:
        return self._pending


class Runtime:
    """Where tasks go in this process; configured at start-up by the plugin's ``startup`` hook.

    The Celery app is built on first use (a task sent, a worker started), so a
    web process that never sends a task never imports Celery.
    """

    def __init__(self) -> None:
        self.settings: AsyncSettings | None = None
        self.flask_app: Flask | None = None
        self.service_name = "macaron"
        self.generation = 0  # bumped by configure(), so tasks re-bind to the new Celery app
        self.runner = InProcessRunner()
        self._celery: Celery | None = None
        self._lock = threading.RLock()
        # What a failed send raises; filled when Celery is imported (an empty tuple catches nothing).
        self.broker_errors: tuple[type[BaseException], ...] = ()

    def configure(self, settings: AsyncSettings, flask_app: Flask | None = None, service_name: str | None = None) -> None:
        """Use these settings from now on."""
        with self._lock:
            previous, self._celery = self._celery, None
            self.settings = settings
            self.flask_app = flask_app
            self.service_name = service_name or self.service_name
            self.generation += 1
        if previous is not None:
            previous.close()
        for module in settings.imports:
            try:
                importlib.import_module(module)
            except Exception as exc:
                raise ConfigError(f"async.imports: importing {module} failed: {type(exc).__name__}: {exc}") from exc

    def ensure_configured(self) -> AsyncSettings:
        """The settings; read from the service's macaron.yaml (``MACARON_SERVICE`` or the current folder) if start-up did not."""
        if self.settings is None:
            from macaron.config import get_config

            config = get_config()
            where = str(config.root / "macaron.yaml") if config.root is not None else "the configuration"
            self.configure(settings_from_config(config, where), service_name=config.get("name"))
        assert self.settings is not None
        return self.settings

    @property
    def celery(self) -> Celery | None:
        """The Celery app with every task on it; None in process mode."""
        if self._celery is not None:
            return self._celery
        with self._lock:
            settings = self.ensure_configured()
            if self._celery is None and not settings.inprocess:
                from kombu.exceptions import OperationalError

                self.broker_errors = (OperationalError,)
                app = build_celery(settings, self.service_name)
                for task in registered_tasks().values():
                    _add_task(app, task)
                self._celery = app
            return self._celery

    def register(self, task: AsyncTask[Any, Any]) -> None:
        """Put a task defined after the Celery app was built on it."""
        with self._lock:
            if self._celery is not None:
                _add_task(self._celery, task)

    def celery_task(self, name: str) -> Task | None:
        """The Celery task of a task name; None in process mode."""
        app = self.celery
        if app is None:
            return None
        found: Task = app.tasks[name]
        return found

    def enqueue_inprocess(self, task: AsyncTask[Any, Any], args: list[Any], kwargs: dict[str, Any], context: dict[str, Any], delay: float) -> None:
        runner = self.runner

        def attempt(number: int) -> Callable[[], None]:
            def job() -> None:
                try:
                    task.invoke(args, kwargs, context, None, number)
                except RetryLater as retry:
                    runner.submit(attempt(number + 1), retry.countdown)

            return job

        schedule_after_response(lambda: runner.submit(attempt(0), delay))


def _add_task(app: Celery, task: AsyncTask[Any, Any]) -> None:
    app.task(name=task.name, bind=True, shared=False, lazy=False, typing=False)(_celery_body(task.name))


runtime = Runtime()


@atexit.register
def _drain_at_exit() -> None:
    if runtime.runner.pending and not runtime.runner.drain(timeout=5.0):
        log.warning("async: %d in-process task(s) had not run when the process exited", runtime.runner.pending)
