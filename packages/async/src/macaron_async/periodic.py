"""The periodic tasks of a service: the schedules of ``async.schedule`` and of ``@asynctask(every=/cron=)``, with their tasks found."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from macaron.config import ConfigError
from macaron_async.registry import registered_tasks
from macaron_async.schedule import Schedule
from macaron_async.serialize import TaskArgumentError, encode_call
from macaron_async.tasks import AsyncTask

if TYPE_CHECKING:
    from macaron_async.settings import AsyncSettings


@dataclass(frozen=True)
class Periodic:
    """A periodic task beat sends: its entry name, task, schedule and fixed arguments (as sent to the broker)."""

    name: str
    task: AsyncTask[Any, Any]
    schedule: Schedule
    args: list[Any]
    kwargs: dict[str, Any]
    source: str  # where it was declared: "@asynctask in shop.jobs" or "async.schedule[0]"

    def __str__(self) -> str:
        shown = ", ".join([*map(repr, self.args), *(f"{k}={v!r}" for k, v in self.kwargs.items())])
        return f"{self.name}: {self.task.name}({shown}) {self.schedule}"


def find_task(path: str) -> AsyncTask[Any, Any]:
    """The ``@asynctask`` named ``path`` (its name, or ``module.function``); importing its module if needed. LookupError says why not."""
    known = registered_tasks()
    if path in known:
        return known[path]
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise LookupError(f"unknown task {path!r}: give its dotted path, such as shop.jobs.cleanup")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise LookupError(f"unknown task {path!r}: there is no module {module_name}") from None
        raise LookupError(f"task {path!r}: importing {module_name} failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise LookupError(f"task {path!r}: importing {module_name} failed: {type(exc).__name__}: {exc}") from exc
    found = registered_tasks().get(path)
    if found is not None:
        return found
    value = getattr(module, attribute, None)
    if isinstance(value, AsyncTask):
        return value
    if value is None:
        raise LookupError(f"unknown task {path!r}: {module_name} has no {attribute}")
    raise LookupError(f"{path} is not an @asynctask (decorate it with @asynctask to schedule it)")


def check_arguments(task: AsyncTask[Any, Any], args: tuple[Any, ...] | list[Any], kwargs: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The arguments as sent, if they fit the task's signature and can travel; ValueError says why not."""
    try:
        signature = inspect.signature(task.func)
    except (TypeError, ValueError):  # a builtin without a signature: the worker will tell
        signature = None
    if signature is not None:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ValueError(f"the arguments do not fit {task.name}{signature}: {exc}") from None
    try:
        return encode_call(tuple(args), dict(kwargs))
    except TaskArgumentError as exc:
        raise ValueError(str(exc)) from None


def periodic_tasks(settings: AsyncSettings, where: str = "the configuration") -> list[Periodic]:
    """Every periodic task of the service: those of ``async.schedule``, then those declared by ``@asynctask(every=/cron=)``.

    An ``async.schedule`` item without a ``name`` is named after its task, so it
    replaces the task's schedule in the code (an overlay such as macaron.prod.yaml
    can move a nightly job). A task that cannot be found, or arguments that do
    not fit, raise ConfigError naming ``where`` and the item.
    """
    result: dict[str, Periodic] = {}
    for item in settings.schedule:
        try:
            task = find_task(item.task)
        except LookupError as exc:
            raise ConfigError(f"{where}: {item.key}.task: {exc}") from None
        try:
            args, kwargs = check_arguments(task, item.args, item.kwargs)
        except ValueError as exc:
            raise ConfigError(f"{where}: {item.key} ({item.task}): {exc}") from None
        name = item.name or task.name
        if name in result:
            raise ConfigError(
                f"{where}: {item.key}: {result[name].source} schedules {name} too; give one of them a name: of its own"
            )
        result[name] = Periodic(name, task, item.schedule, args, kwargs, item.key)
    for task in registered_tasks().values():
        if task.schedule is not None and task.name not in result:
            result[task.name] = Periodic(task.name, task, task.schedule, [], {}, f"@asynctask in {task.func.__module__}")
    return sorted(result.values(), key=lambda periodic: periodic.name)
