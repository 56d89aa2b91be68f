"""``@asynctask``: a function an endpoint hands to a worker, with the caller's identity and request id.

Calling a task from a request (or from another task) queues it and returns at
once; calling it anywhere else runs it inline, like a plain function. ``.fire()``
always queues. The caller's :class:`macaron.context.CallContext` (user id, token,
claims, request id, call chain) travels with the task, so ``get_userid()`` and
the log lines of the task are those of the request that queued it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from flask import has_app_context, has_request_context

from macaron.context import CallContext, current, use
from macaron.errors import MacaronException
from macaron.models import to_wire
from macaron.reporting import report_error
from macaron_async.registry import add_task
from macaron_async.registry import registered_tasks as registered_tasks
from macaron_async.registry import task_named as task_named
from macaron_async.runtime import RetryLater, Runtime, runtime
from macaron_async.schedule import Schedule
from macaron_async.serialize import TaskArgumentError, decode_call, encode_call

if TYPE_CHECKING:
    from celery import Task
    from celery.result import AsyncResult

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("macaron.async")

REPR_LIMIT = 1024  # Celery's argsrepr_maxsize


@dataclass(frozen=True)
class TaskInfo:
    """The task running now: its name, id (None in process) and attempt (1 for the first run)."""

    name: str
    id: str | None
    attempt: int


_running: ContextVar[TaskInfo | None] = ContextVar("macaron_async_task", default=None)


def current_task() -> TaskInfo | None:
    """The task being run by this worker thread, or None outside a task."""
    return _running.get()


def is_task() -> bool:
    """True while running a task (on a worker or in process)."""
    return _running.get() is not None


class TaskQueueUnavailable(MacaronException):
    """The broker did not take the task (down, unreachable): a 503 when it happens in a request."""

    code = "TASK_QUEUE_UNAVAILABLE"
    status = 503


class AsyncTask(Generic[P, R]):
    """A function decorated with ``@asynctask``."""

    def __init__(
        self,
        func: Callable[P, R],
        *,
        name: str | None = None,
        delay: float = 0,
        queue: str | None = None,
        retries: int = 0,
        retry_for: tuple[type[BaseException], ...] = (Exception,),
        backoff: float = 1.0,
        backoff_max: float = 600.0,
        jitter: bool = True,
        schedule: Schedule | None = None,
    ) -> None:
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise ValueError(f"@asynctask: delay must be a number of seconds >= 0, not {delay!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"@asynctask: retries must be a whole number >= 0, not {retries!r}")
        if not isinstance(retry_for, tuple) or not all(isinstance(c, type) and issubclass(c, BaseException) for c in retry_for):
            raise ValueError(f"@asynctask: retry_for must be a tuple of exception classes, not {retry_for!r}")
        if backoff < 0 or backoff_max < 0:
            raise ValueError("@asynctask: backoff and backoff_max must be >= 0")
        self.func = func
        self.name = name or f"{func.__module__}.{func.__qualname__}"
        self.delay = float(delay)
        self.queue = queue
        self.retries = retries
        self.retry_for = retry_for
        self.backoff = float(backoff)
        self.backoff_max = float(backoff_max)
        self.jitter = jitter
        self.schedule = schedule  # run periodically by `macaron beat`, without arguments
        self._options: dict[str, Any] = {}
        if delay:
            self._options["countdown"] = self.delay
        if queue:
            self._options["queue"] = queue
        self._celery_task: Task | None = None
        self._generation = -1
        functools.update_wrapper(self, func)

    def __repr__(self) -> str:
        return f"<asynctask {self.name}>"

    # -- calling ------------------------------------------------------------------

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """In a request or a task: queue the call and return at once. Elsewhere: run it inline and return its result."""
        if has_request_context() or _running.get() is not None:
            return self.fire(*args, **kwargs)
        return self.func(*args, **kwargs)

    def run(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run inline, now, in the caller's context."""
        return self.func(*args, **kwargs)

    def fire(self, *args: P.args, **kwargs: P.kwargs) -> AsyncResult | None:
        """Queue the call from anywhere; return Celery's AsyncResult (None in process mode).

        Raises TaskArgumentError at once for an argument that is neither JSON nor a model.
        """
        runtime = _runtime()
        if self._generation != runtime.generation:
            self._bind(runtime)
        encoded_args, encoded_kwargs = encode_call(args, kwargs)
        context = current().to_dict()
        if self._celery_task is None:
            runtime.enqueue_inprocess(self, encoded_args, encoded_kwargs, context, self.delay)
            return None
        # argsrepr/kwargsrepr are what Flower and Celery's events show: the caller's arguments, not the context
        # (it holds the token); and Celery's own saferepr of the nested message costs more than the send itself.
        try:
            return self._celery_task.apply_async(
                (encoded_args, encoded_kwargs, context),
                argsrepr=repr(args)[:REPR_LIMIT],
                kwargsrepr=repr(kwargs)[:REPR_LIMIT],
                **self._options,
            )
        except runtime.broker_errors as exc:
            log.error("task %s could not be queued: %s: %s", self.name, type(exc).__name__, exc)
            raise TaskQueueUnavailable(f"task {self.name} could not be queued: the task broker is unreachable") from exc

    def with_options(self, *, delay: float | None = None, queue: str | None = None) -> AsyncTask[P, R]:
        """The same task with another delay or queue, for one call: ``send.with_options(delay=60).fire(...)``."""
        copy: AsyncTask[P, R] = AsyncTask(
            self.func,
            name=self.name,
            delay=self.delay if delay is None else delay,
            queue=self.queue if queue is None else queue,
            retries=self.retries,
            retry_for=self.retry_for,
            backoff=self.backoff,
            backoff_max=self.backoff_max,
            jitter=self.jitter,
        )
        if delay is None:  # a new delay is checked against the visibility timeout when first sent
            copy._celery_task, copy._generation = self._celery_task, self._generation
        return copy

    def _bind(self, runtime: Runtime) -> None:
        settings = runtime.ensure_configured()
        if self.delay and settings.is_redis and not settings.inprocess and self.delay >= settings.visibility_timeout:
            # A Redis worker holds a delayed task unacknowledged until it is due: past the visibility timeout
            # another worker would get it too, and it would run twice.
            raise ValueError(
                f"task {self.name}: a delay of {self.delay:g} s must be shorter than async.visibility_timeout "
                f"({settings.visibility_timeout:g} s), or the task would run twice: raise visibility_timeout"
            )
        self._celery_task = runtime.celery_task(self.name)
        self._generation = runtime.generation

    # -- running ------------------------------------------------------------------

    def backoff_delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1``: doubling from ``backoff``, capped, maybe jittered."""
        delay: float = min(self.backoff_max, self.backoff * 2.0**attempt)
        return delay * (0.5 + random.random() / 2) if self.jitter else delay

    def invoke(self, args: list[Any], kwargs: dict[str, Any], context: dict[str, Any] | None, task_id: str | None, attempt: int) -> Any:
        """Run one attempt as queued: the caller's context restored, arguments rebuilt, a failure reported.

        ``attempt`` counts from 0. Raises :class:`RetryLater` when the function
        raised a declared exception and retries are left; any other failure is
        reported through :func:`macaron.reporting.report_error` and re-raised.
        """
        info = TaskInfo(self.name, task_id, attempt + 1)
        token = _running.set(info)
        try:
            with use(CallContext.from_dict(context or {})), _app_context():
                try:
                    call_args, call_kwargs = decode_call(args, kwargs)
                    result = self.func(*call_args, **call_kwargs)
                except TaskArgumentError as exc:
                    self._report(exc, info, args, kwargs)
                    raise
                except self.retry_for as exc:
                    if attempt < self.retries:
                        countdown = self.backoff_delay(attempt)
                        log.warning(
                            "task %s %s failed (%s: %s); retry %d of %d in %.1f s",
                            self.name, task_id or "", type(exc).__name__, exc, attempt + 1, self.retries, countdown,
                        )
                        raise RetryLater(exc, countdown) from exc
                    self._report(exc, info, args, kwargs)
                    raise
                except Exception as exc:
                    self._report(exc, info, args, kwargs)
                    raise
                return to_wire(result)
        finally:
            _running.reset(token)

    def _report(self, exc: BaseException, info: TaskInfo, args: list[Any], kwargs: dict[str, Any]) -> None:
        title = f"task {self.name} failed: {type(exc).__name__}: {exc}"
        data = {
            "task": self.name,
            "task_id": info.id,
            "attempt": info.attempt,
            "retries": self.retries,
            "queue": self.queue,
            "args": args,
            "kwargs": kwargs,
        }
        try:
            report_error(title, data=data, exception=exc, is_fatal=True)
        except Exception:
            log.exception("reporting the failure of task %s failed", self.name)


def _app_context() -> Any:
    app = _runtime().flask_app
    if app is None or has_app_context():
        return _null()
    return app.app_context()


@contextmanager
def _null() -> Iterator[None]:
    yield


def _runtime() -> Runtime:
    return runtime


def _check_callable_without_arguments(function: Callable[..., Any], schedule: Schedule) -> None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return
    try:
        signature.bind()
    except TypeError as exc:
        raise ValueError(
            f"@asynctask: {function.__module__}.{function.__qualname__}{signature} runs {schedule} without arguments, "
            f"but {exc}: give its parameters defaults, or schedule it in async.schedule with args"
        ) from None


@overload
def asynctask(func: Callable[P, R], /) -> AsyncTask[P, R]: ...


@overload
def asynctask(
    *,
    name: str | None = None,
    delay: float = 0,
    countdown: float | None = None,
    queue: str | None = None,
    retries: int = 0,
    retry_for: tuple[type[BaseException], ...] = (Exception,),
    backoff: float = 1.0,
    backoff_max: float = 600.0,
    jitter: bool = True,
    every: float | timedelta | None = None,
    cron: str | None = None,
) -> Callable[[Callable[P, R]], AsyncTask[P, R]]: ...


def asynctask(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    delay: float = 0,
    countdown: float | None = None,
    queue: str | None = None,
    retries: int = 0,
    retry_for: tuple[type[BaseException], ...] = (Exception,),
    backoff: float = 1.0,
    backoff_max: float = 600.0,
    jitter: bool = True,
    every: float | timedelta | None = None,
    cron: str | None = None,
) -> AsyncTask[P, R] | Callable[[Callable[P, R]], AsyncTask[P, R]]:
    """Make a function a task: ``@asynctask`` or ``@asynctask(delay=10, queue="emails", retries=3, retry_for=(IOError,))``.

    ``delay`` (alias ``countdown``) waits that many seconds before the task may
    run; ``queue`` sends it to a queue of its own (start a worker with ``-Q``);
    ``retries`` retries it on the exceptions of ``retry_for``, waiting ``backoff``
    seconds, then twice as long each time up to ``backoff_max`` (with ``jitter``,
    a random half to all of it).

    ``every`` (seconds) or ``cron`` (``"0 3 * * *"``, in ``async.timezone``)
    make it a periodic task too: ``macaron beat`` queues it, without arguments,
    on that schedule (``async.schedule`` in macaron.yaml gives arguments).
    """
    if countdown is not None:
        if delay:
            raise ValueError("@asynctask: give delay or countdown, not both")
        delay = countdown
    schedule = None
    if every is not None or cron is not None:
        try:
            schedule = Schedule.of(every=every, cron=cron)
        except ValueError as exc:
            raise ValueError(f"@asynctask: {exc}") from None

    def decorate(function: Callable[P, R]) -> AsyncTask[P, R]:
        if isinstance(function, AsyncTask):
            raise TypeError(f"{function.name} is already an asynctask")
        if not callable(function):
            raise TypeError(f"@asynctask decorates a function, not {function!r}")
        if schedule is not None:
            _check_callable_without_arguments(function, schedule)
        task: AsyncTask[P, R] = AsyncTask(
            function,
            name=name,
            delay=delay,
            queue=queue,
            retries=retries,
            retry_for=retry_for,
            backoff=backoff,
            backoff_max=backoff_max,
            jitter=jitter,
            schedule=schedule,
        )
        add_task(task)
        _runtime().register(task)
        return task

    if func is not None:
        return decorate(func)
    return decorate
