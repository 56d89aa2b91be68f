"""macaron-async: ``@asynctask`` on Celery, with the caller's identity and request id carried to the worker.

    from macaron_async import asynctask

    @asynctask(retries=3, retry_for=(SmtpError,))
    def send_welcome(user):
        ...

    def signup(user):          # an endpoint
        send_welcome(user)     # queued; the endpoint answers at once

See docs/async.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from macaron_async.serialize import TaskArgumentError
from macaron_async.settings import AsyncSettings
from macaron_async.tasks import AsyncTask, TaskInfo, TaskQueueUnavailable, asynctask, current_task, is_task, registered_tasks

if TYPE_CHECKING:
    from celery import Celery


def celery_app() -> Celery | None:
    """The Celery app tasks are sent with (configured from macaron.yaml on first use); None in process mode."""
    from macaron_async.runtime import runtime

    runtime.ensure_configured()
    return runtime.celery


def drain(timeout: float = 10.0) -> bool:
    """In process mode: wait until every queued task has run; False if ``timeout`` seconds passed first."""
    from macaron_async.runtime import runtime

    return runtime.runner.drain(timeout)


__all__ = [
    "AsyncSettings",
    "AsyncTask",
    "TaskArgumentError",
    "TaskInfo",
    "TaskQueueUnavailable",
    "asynctask",
    "celery_app",
    "current_task",
    "drain",
    "is_task",
    "registered_tasks",
]
