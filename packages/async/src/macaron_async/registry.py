"""The tasks defined in this process, by name: filled by ``@asynctask``, read by the runtime, the worker and beat."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from macaron_async.tasks import AsyncTask

_tasks: dict[str, AsyncTask[Any, Any]] = {}


def registered_tasks() -> dict[str, AsyncTask[Any, Any]]:
    """Every task defined so far in this process, by name."""
    return dict(_tasks)


def task_named(name: str) -> AsyncTask[Any, Any]:
    """The task of that name (the latest definition, if its module was reloaded)."""
    return _tasks[name]


def add_task(task: AsyncTask[Any, Any]) -> None:
    """Register a new task; one of the same name from the same function (its module reloaded) replaces it, another is refused."""
    existing = _tasks.get(task.name)
    function = task.func
    if existing is not None and (existing.func.__module__, existing.func.__qualname__) != (function.__module__, function.__qualname__):
        raise ValueError(
            f"@asynctask: two tasks are named {task.name!r}: {existing.func.__module__}.{existing.func.__qualname__} and "
            f"{function.__module__}.{function.__qualname__} (give one another name=)"
        )
    _tasks[task.name] = task
