"""The ``async`` section of ``macaron.yaml``, checked once at start-up.

.. code-block:: yaml

    async:
      mode: celery                          # or inprocess (development: no broker, no worker)
      broker_url: redis://127.0.0.1:6379/0  # default
      result_backend: redis://127.0.0.1:6379/1   # optional; without it results are dropped
      queue: myservice                      # default: the service's name
      visibility_timeout: 3600              # seconds; must exceed the longest task (Redis brokers)
      restore_interval: 60                  # seconds between sweeps for tasks of dead workers (Redis brokers)
      prefetch_multiplier: 1
      imports: [myservice.tasks]            # modules holding tasks that no handler module imports
      timezone: UTC                         # of cron schedules
      schedule:                             # periodic tasks, sent by `macaron beat`
        - {task: myservice.jobs.cleanup, cron: "0 3 * * *", args: [30]}
      beat_state_dir: /var/lib/myservice    # default: a private folder under the temp folder
      beat_lock_timeout: 30                 # seconds before the lock of a dead beat lets another start
      celery: {}                            # any other Celery setting, passed as is
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from macaron.config import ConfigError
from macaron_async.schedule import ScheduleConfig, check_timezone, schedule_from_config

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
MODES = ("celery", "inprocess")
DEFAULT_VISIBILITY_TIMEOUT = 3600
DEFAULT_BEAT_LOCK_TIMEOUT = 30
REDIS_SCHEMES = ("redis", "rediss", "sentinel", "redis+socket")


@dataclass(frozen=True)
class AsyncSettings:
    """What the ``async`` section says, with defaults filled in."""

    mode: str = "celery"
    broker_url: str = DEFAULT_BROKER
    result_backend: str | None = None
    queue: str = "macaron"
    visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT
    restore_interval: float | None = None
    prefetch_multiplier: int = 1
    imports: tuple[str, ...] = ()
    timezone: str = "UTC"
    schedule: tuple[ScheduleConfig, ...] = ()
    beat_state_dir: str | None = None
    beat_lock_timeout: float = DEFAULT_BEAT_LOCK_TIMEOUT
    celery: dict[str, Any] = field(default_factory=dict)

    @property
    def inprocess(self) -> bool:
        return self.mode == "inprocess"

    @property
    def is_redis(self) -> bool:
        return self.broker_url.split("://", 1)[0] in REDIS_SCHEMES

    @property
    def sweep_interval(self) -> float:
        """How often a worker looks for tasks whose worker died: a quarter of the visibility timeout, 1 s to 60 s."""
        if self.restore_interval is not None:
            return self.restore_interval
        return min(60.0, max(1.0, self.visibility_timeout / 4))

    @property
    def sweep_lock_expiry(self) -> int:
        """Seconds before the lock of a sweep that never finished (its worker died) lets another worker sweep."""
        return max(5, round(2 * self.sweep_interval))


_KEYS = (
    "mode",
    "broker_url",
    "result_backend",
    "queue",
    "visibility_timeout",
    "restore_interval",
    "prefetch_multiplier",
    "imports",
    "timezone",
    "schedule",
    "beat_state_dir",
    "beat_lock_timeout",
    "celery",
)


def _number(where: str, key: str, value: Any, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{where}: async.{key} must be a number of seconds of at least {minimum:g}, not {value!r}")
    return float(value)


def settings_from_config(config: Mapping[str, Any], where: str = "the configuration") -> AsyncSettings:
    """The settings of a service's configuration; a bad ``async`` section raises ConfigError naming ``where``."""
    section = config.get("async")
    if section is None:
        section = {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: 'async' must be a mapping (broker_url, mode, ...), not {type(section).__name__}")
    unknown = sorted(set(section) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} in 'async': {', '.join(unknown)} (known: {', '.join(_KEYS)})")
    mode = section.get("mode", "celery")
    if mode not in MODES:
        raise ConfigError(f"{where}: async.mode must be one of {', '.join(MODES)}, not {mode!r}")
    values: dict[str, Any] = {"mode": mode}
    for key in ("broker_url", "result_backend"):
        value = section.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or "://" not in value:
            raise ConfigError(f"{where}: async.{key} must be a URL such as redis://127.0.0.1:6379/0, not {value!r}")
        values[key] = value
    queue = section.get("queue", config.get("name") or "macaron")
    if not isinstance(queue, str) or not queue or any(c.isspace() or c == "," for c in queue):
        raise ConfigError(f"{where}: async.queue must be a name without spaces or commas, not {queue!r}")
    values["queue"] = queue
    if "visibility_timeout" in section:
        values["visibility_timeout"] = _number(where, "visibility_timeout", section["visibility_timeout"], 1)
    if "restore_interval" in section:
        values["restore_interval"] = _number(where, "restore_interval", section["restore_interval"], 0.1)
    prefetch = section.get("prefetch_multiplier", 1)
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1:
        raise ConfigError(f"{where}: async.prefetch_multiplier must be a whole number of at least 1, not {prefetch!r}")
    values["prefetch_multiplier"] = prefetch
    imports = section.get("imports") or []
    if not isinstance(imports, list) or not all(isinstance(name, str) and name for name in imports):
        raise ConfigError(f"{where}: async.imports must be a list of module names, not {imports!r}")
    values["imports"] = tuple(imports)
    values["timezone"] = check_timezone(section.get("timezone", "UTC"), where)
    values["schedule"] = schedule_from_config(section, where)
    state_dir = section.get("beat_state_dir")
    if state_dir is not None:
        if not isinstance(state_dir, str) or not state_dir.strip():
            raise ConfigError(f"{where}: async.beat_state_dir must be a folder path, not {state_dir!r}")
        values["beat_state_dir"] = state_dir
    if "beat_lock_timeout" in section:
        values["beat_lock_timeout"] = _number(where, "beat_lock_timeout", section["beat_lock_timeout"], 3)
    extra = section.get("celery") or {}
    if not isinstance(extra, Mapping):
        raise ConfigError(f"{where}: async.celery must be a mapping of Celery settings, not {extra!r}")
    values["celery"] = dict(extra)
    return AsyncSettings(**values)
