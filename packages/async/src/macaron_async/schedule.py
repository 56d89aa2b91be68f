"""Periodic tasks: when a task runs on its own (``every`` seconds or a ``cron`` expression) and with what arguments.

This module says when and checks the ``schedule`` list of the settings; :mod:`macaron_async.periodic`
finds the tasks they name. A schedule is declared in the code (``@asynctask(every=300)``,
``@asynctask(cron="0 3 * * *")``) or in the ``schedule`` list of the ``async``
section of ``macaron.yaml``. ``macaron beat`` sends the runs to the broker; the
workers run them like any other task.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from macaron.config import ConfigError

if TYPE_CHECKING:
    from celery import Celery
    from celery.schedules import BaseSchedule

ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

# name, Celery's crontab_parser (max_, min_), characters allowed (names only where cron allows them: Celery's parser
# would read "mon" as 1 in any field)
_FIELDS = (
    ("minute", 60, 0, "0-59", r"[0-9*,/-]+"),
    ("hour", 24, 0, "0-23", r"[0-9*,/-]+"),
    ("day of month", 31, 1, "1-31", r"[0-9*,/-]+"),
    ("month", 12, 1, "1-12 or jan-dec", r"[0-9a-zA-Z*,/-]+"),
    ("day of week", 7, 0, "0-6 (Sunday is 0) or sun-sat", r"[0-9a-zA-Z*,/-]+"),
)

ENTRY_NAME = re.compile(r"[A-Za-z0-9_.:-]+")


def parse_cron(expression: str) -> str:
    """The five fields of a cron expression (``minute hour day-of-month month day-of-week``), checked; ValueError says what is wrong.

    ``@hourly``, ``@daily``, ``@weekly``, ``@monthly`` and ``@yearly`` stand for their usual expressions.
    """
    if not isinstance(expression, str):
        raise ValueError(f"a cron expression is a string such as '0 3 * * *', not {expression!r}")
    text = ALIASES.get(expression.strip().lower(), expression)
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"bad cron expression {expression!r}: it needs 5 fields (minute hour day-of-month month day-of-week), not {len(fields)}"
        )
    from celery.schedules import ParseException, crontab_parser

    for value, (name, max_, min_, allowed, pattern) in zip(fields, _FIELDS, strict=True):
        problem = None
        if not re.fullmatch(pattern, value):
            problem = "unexpected characters"
        else:
            try:
                crontab_parser(max_, min_).parse(value)
            except (ValueError, ParseException) as exc:
                problem = str(exc).rstrip(".")
        if problem is not None:
            raise ValueError(f"bad cron expression {expression!r}: {name} {value!r}: {problem} (allowed: {allowed})")
    if fields[2] != "*" and fields[4] != "*":
        # cron runs when either day field matches; Celery's crontab only when both do. Refuse rather than guess.
        raise ValueError(
            f"bad cron expression {expression!r}: give a day of month or a day of week, not both "
            "(cron runs on either, Celery's crontab only on days matching both): set one of them to *"
        )
    try:
        _crontab(" ".join(fields))
    except ValueError as exc:  # a day no month has, such as 31 in February
        raise ValueError(f"bad cron expression {expression!r}: {exc}") from None
    return " ".join(fields)


def _crontab(fields: str, app: Celery | None = None, **kwargs: Any) -> Any:
    from celery.schedules import crontab

    minute, hour, day_of_month, month, day_of_week = fields.split()
    return crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month, day_of_week=day_of_week, app=app, **kwargs)


@dataclass(frozen=True)
class Schedule:
    """When a periodic task runs: every ``every`` seconds, or at the times of the ``cron`` expression (in the service's time zone)."""

    every: float | None = None
    cron: str | None = None

    @classmethod
    def of(cls, every: Any = None, cron: Any = None) -> Schedule:
        """A checked schedule from ``every`` (seconds, at least 1) or ``cron``; ValueError says what is wrong."""
        if (every is None) == (cron is None):
            raise ValueError("give every (seconds) or cron ('0 3 * * *'), one of them")
        if every is not None:
            if isinstance(every, timedelta):
                every = every.total_seconds()
            if isinstance(every, bool) or not isinstance(every, (int, float)) or every < 1:
                raise ValueError(f"every must be a number of seconds of at least 1, not {every!r}")
            return cls(every=float(every))
        return cls(cron=parse_cron(cron))

    def __str__(self) -> str:
        return f"every {self.every:g} s" if self.every is not None else f"cron {self.cron}"

    def celery_schedule(self, app: Celery) -> BaseSchedule:
        """What Celery beat checks: a ``schedule`` or a ``crontab`` (in the time zone of ``app``)."""
        if self.every is not None:
            from celery.schedules import schedule

            return schedule(run_every=timedelta(seconds=self.every), app=app)
        assert self.cron is not None
        result: BaseSchedule = _crontab(self.cron, app)
        return result

    def next_run(self, after: datetime, tz: str = "UTC") -> datetime:
        """The first run after ``after`` (an aware datetime), in time zone ``tz``, as beat computes it."""
        zone = ZoneInfo(tz)
        after = after.astimezone(zone)
        if self.every is not None:
            delay = timedelta(seconds=self.every)
        else:
            from celery import Celery

            app = Celery("macaron-next-run", set_as_current=False, fixups=[])
            app.conf.update(timezone=tz, enable_utc=True)
            cron = self.celery_schedule(app)
            cron.nowfun = lambda: after
            delay = cron.remaining_estimate(after)
        # In UTC: arithmetic on two times of one zone would be wall-clock time, wrong across a DST change.
        return (after.astimezone(timezone.utc) + delay).astimezone(zone)


@dataclass(frozen=True)
class ScheduleConfig:
    """One item of ``async.schedule`` as written: checked for shape, its task not looked up yet."""

    index: int
    task: str
    schedule: Schedule
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    name: str | None = None

    @property
    def key(self) -> str:
        return f"async.schedule[{self.index}]"


_SCHEDULE_KEYS = ("task", "every", "cron", "args", "kwargs", "name")


def schedule_from_config(section: Mapping[str, Any], where: str) -> tuple[ScheduleConfig, ...]:
    """The ``schedule`` list of an ``async`` section, checked for shape (the tasks are looked up by :func:`periodic_tasks`)."""
    items = section.get("schedule")
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ConfigError(f"{where}: async.schedule must be a list of periodic tasks (task, every or cron, args, kwargs), not {items!r}")
    result: list[ScheduleConfig] = []
    names: dict[str, str] = {}
    for index, item in enumerate(items):
        key = f"async.schedule[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: {key} must be a mapping with task and every or cron, not {item!r}")
        unknown = sorted(set(item) - set(_SCHEDULE_KEYS))
        if unknown:
            raise ConfigError(
                f"{where}: unknown key{'s' if len(unknown) > 1 else ''} in '{key}': {', '.join(map(str, unknown))} (known: {', '.join(_SCHEDULE_KEYS)})"
            )
        task = item.get("task")
        if not isinstance(task, str) or not task.strip():
            raise ConfigError(f"{where}: {key}.task must be the dotted path of an @asynctask, such as shop.jobs.cleanup, not {task!r}")
        if ("every" in item) == ("cron" in item):
            raise ConfigError(f"{where}: {key} ({task}) needs every (seconds) or cron ('0 3 * * *'): give one of them")
        try:
            schedule = Schedule.of(every=item["every"]) if "every" in item else Schedule.of(cron=item["cron"])
        except ValueError as exc:
            raise ConfigError(f"{where}: {key}.{'every' if 'every' in item else 'cron'}: {exc}") from None
        args = item.get("args", [])
        if not isinstance(args, list):
            raise ConfigError(f"{where}: {key}.args must be a list of positional arguments, not {args!r}")
        kwargs = item.get("kwargs", {})
        if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
            raise ConfigError(f"{where}: {key}.kwargs must be a mapping of keyword arguments, not {kwargs!r}")
        name = item.get("name")
        if name is not None:
            if not isinstance(name, str) or not ENTRY_NAME.fullmatch(name):
                raise ConfigError(f"{where}: {key}.name must be letters, digits and _.:- (it goes into request ids), not {name!r}")
            if name in names:
                raise ConfigError(f"{where}: {key}.name: {names[name]} has the name {name!r} too; give each a name of its own")
            names[name] = key
        result.append(ScheduleConfig(index, task.strip(), schedule, tuple(args), dict(kwargs), name))
    return tuple(result)


def check_timezone(name: Any, where: str) -> str:
    """``name`` if it is a time zone this machine knows (IANA names such as Europe/Paris, or UTC)."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: async.timezone must be a time zone name such as UTC or Europe/Paris, not {name!r}")
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ConfigError(f"{where}: async.timezone: unknown time zone {name!r} (an IANA name such as Europe/Paris, or UTC)") from None
    return name


def request_id(name: str, moment: datetime | None = None) -> str:
    """The request id of one scheduled run: ``beat-<entry>-<UTC time>``, such as ``beat-shop.jobs.cleanup-20261122T030000Z``."""
    moment = (moment or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"beat-{name}-{moment:%Y%m%dT%H%M%SZ}"
