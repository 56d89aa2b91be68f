"""Logging for a service: stdout, the request id and user id on every line, text or JSON lines.

Configured from ``macaron.yaml`` at start-up (see docs/operations.md):

``log_level``
    ``debug``, ``info``, ``warning``, ``error`` or ``critical``: the level of the
    root logger. Unset, the root logger's level is left as it is (Python's default
    is WARNING), which keeps a service quiet: the one-line-per-request log is
    written at INFO, so nothing is printed per request until ``log_level: info``.
``log_format``
    ``text`` (default), ``json`` (one JSON object per line) or ``none`` (macaron
    installs no handler and leaves logging to you; add :class:`ContextFilter` to
    your own handlers to get the ids).

Nothing here logs request headers or bodies, so ``Authorization`` and tokens
never reach the logs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TextIO

import orjson

from macaron.config import Config, ConfigError
from macaron.context import current

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}
FORMATS = ("text", "json", "none")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(user_id)s] %(message)s"
NO_VALUE = "-"  # what a line shows for the request id or user id outside a request or before sign-in

# Attributes every LogRecord has; any other attribute came from ``extra=`` and goes into JSON lines.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "request_id", "user_id"}


class ContextFilter(logging.Filter):
    """Puts the request id and user id of the running request on each record (``-`` when there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = current()
        record.request_id = context.request_id or NO_VALUE
        record.user_id = context.user_id or NO_VALUE
        return True


def _keep(text: str) -> str:
    return text


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``; ``redact`` hides secret values (the config's) wherever they appear in a line."""

    def __init__(self, redact: Callable[[str], str] = _keep) -> None:
        super().__init__(TEXT_FORMAT)
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):  # a record that did not pass through ContextFilter
            ContextFilter().filter(record)
        return self.redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, user_id, the ``extra`` fields, exception."""

    def __init__(self, redact: Callable[[str], str] = _keep) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            ContextFilter().filter(record)
        request_id = getattr(record, "request_id", NO_VALUE)
        user_id = getattr(record, "user_id", NO_VALUE)
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
            "request_id": None if request_id == NO_VALUE else request_id,
            "user_id": None if user_id == NO_VALUE else user_id,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.redact(self.formatException(record.exc_info))
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return self.redact(orjson.dumps(line, default=str).decode())


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is when a line is written (test runners swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stdout


def setup_logging(level: str | None = None, log_format: str = "text", redact: Callable[[str], str] = _keep) -> logging.Handler | None:
    """Install macaron's stdout handler on the root logger, replacing one installed before; return it.

    ``level`` None leaves the root logger's level alone. ``log_format`` ``none``
    installs nothing (and removes a handler installed by an earlier call).
    ``redact`` is applied to every line written (the config's, to hide secret values).
    """
    if level is not None and level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "macaron", False):
            root.removeHandler(handler)
    if level is not None:
        root.setLevel(LEVELS[level])
    if log_format == "none":
        return None
    handler = StdoutHandler()
    handler.macaron = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter(redact) if log_format == "json" else TextFormatter(redact))
    root.addHandler(handler)
    return handler


def setup_from_config(config: Config) -> logging.Handler | None:
    """:func:`setup_logging` with ``log_level`` and ``log_format`` from the configuration; bad values stop start-up."""
    level = config.get("log_level")
    log_format = config.get("log_format", "text")
    where = config.where()
    if level is not None and (not isinstance(level, str) or level.lower() not in LEVELS):
        raise ConfigError(f"{where}: log_level must be one of {', '.join(LEVELS)}, not {level!r}")
    if not isinstance(log_format, str) or log_format.lower() not in FORMATS:
        raise ConfigError(f"{where}: log_format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    return setup_logging(level.lower() if level is not None else None, log_format.lower(), config.redact)
