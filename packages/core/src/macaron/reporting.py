"""Crash and slow-call reports, sent to the reporters a service configures.

A report is a plain dict (its fields are listed in docs/operations.md). It is made
for every 5xx response, for every :func:`report_error` call and for every request
slower than its threshold, then handed to each reporter: the callables named by
``error_reporter`` in ``macaron.yaml`` and every plugin implementing the
``on_report`` hook. macaron itself makes no network call: a reporter that wants
one makes it. A reporter that raises is logged and the others still run; the
response is never changed by a reporter.
"""

from __future__ import annotations

import functools
import logging
import re
import socket
import traceback
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl

from flask import current_app, has_app_context, has_request_context, request

from macaron.config import Config, ConfigError, import_callables
from macaron.context import current
from macaron.errors import MacaronException

if TYPE_CHECKING:
    from flask import Flask

    from macaron.plugins import MacaronPluginManager

log = logging.getLogger("macaron.reporting")

F = TypeVar("F", bound=Callable[..., Any])

EXTENSION = "macaron.reporting"
# Keys macaron keeps in the WSGI environ of a request (cheaper than any other per-request state).
START_KEY = "macaron.start"  # perf_counter() when the request arrived
SLOW_KEY = "macaron.slow_ms"  # the request's own slow-call threshold, set by @report_slow
REPORTED_KEY = "macaron.reported"  # a crash report was made for this request
STREAMED_KEY = "macaron.streamed"  # the handler returned a streamed response: its body is made after the middleware returns

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(r"token|secret|passw|pwd|api.?key|auth|signature|session|cookie|credential|jwt|^(key|sig|code)$", re.IGNORECASE)
_HOST = socket.gethostname()  # local; never a network call


class Reporting:
    """The reporters and slow-call threshold of one service, resolved at start-up."""

    def __init__(
        self,
        reporters: list[tuple[str, Callable[[dict[str, Any]], Any]]] | None = None,
        slow_ms: float | None = None,
        service: Mapping[str, Any] | None = None,
        plugin_manager: MacaronPluginManager | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.reporters = reporters or []
        self.redact = redact
        self.slow_ms = slow_ms
        self.service = {"name": None, "version": None, "env": None, "host": _HOST, **(service or {})}
        self.plugin_manager = plugin_manager

    @classmethod
    def from_config(cls, config: Config, plugin_manager: MacaronPluginManager | None, version: str | None = None) -> Reporting:
        where = config.where()
        reporters = import_callables(config, "error_reporter")
        slow_ms = config.get("report_slow_calls_ms")
        if slow_ms is not None and (isinstance(slow_ms, bool) or not isinstance(slow_ms, (int, float)) or slow_ms <= 0):
            raise ConfigError(f"{where}: report_slow_calls_ms must be a number of milliseconds above 0, not {slow_ms!r}")
        service = {"name": config.get("name"), "version": version or config.get("version"), "env": config.env}
        return cls(reporters, float(slow_ms) if slow_ms is not None else None, service, plugin_manager, config.redact)

    def send(self, report: dict[str, Any]) -> None:
        """Give the report to every reporter; one that fails is logged and skipped."""
        for name, reporter in self.reporters:
            try:
                reporter(report)
            except Exception:
                log.exception("error reporter %s failed on report %s", name, report["error_id"])
        if self.plugin_manager is None:
            return
        # Called one by one rather than through pm.hook, so one failing plugin does not silence the others.
        for impl in reversed(self.plugin_manager.hook.on_report.get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                continue
            try:
                impl.function(*[{"report": report}[name] for name in impl.argnames])
            except Exception:
                log.exception("plugin %s failed on report %s", impl.plugin_name, report["error_id"])


_fallback: Reporting | None = None


def install(app: Flask, reporting: Reporting) -> None:
    """Make ``reporting`` the one used for ``app``'s requests (and outside any request, the last one installed)."""
    global _fallback
    app.extensions[EXTENSION] = reporting
    _fallback = reporting


def for_app(app: Flask) -> Reporting | None:
    found: Reporting | None = app.extensions.get(EXTENSION)
    return found


def current_reporting() -> Reporting:
    """The reporting of the app serving the current request; outside one, of the last app built, else from the config."""
    global _fallback
    if has_app_context():
        found = for_app(current_app)  # type: ignore[arg-type]
        if found is not None:
            return found
    if _fallback is None:
        from macaron.config import get_config
        from macaron.plugins import pm

        try:
            _fallback = Reporting.from_config(get_config(), pm())
        except Exception as exc:  # a script with no service: reports are only logged
            log.debug("no service configuration for error reporting: %s", exc)
            _fallback = Reporting()
    return _fallback


# -- building reports -----------------------------------------------------------


def _query(environ: Mapping[str, Any]) -> dict[str, Any]:
    """The query string as a dict, values of secret-looking names replaced (a token in a URL must not reach a report)."""
    query: dict[str, Any] = {}
    for name, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
        shown = REDACTED if _SECRET_NAME.search(name) else value
        if name in query:
            previous = query[name]
            query[name] = [*previous, shown] if isinstance(previous, list) else [previous, shown]
        else:
            query[name] = shown
    return query


def _request_section(environ: Mapping[str, Any] | None, now: float) -> dict[str, Any]:
    context = current()
    section: dict[str, Any] = {
        "id": context.request_id,
        "method": None,
        "path": None,
        "query": {},
        "body_size": None,
        "duration_ms": None,
        "call_chain": list(context.call_chain),
    }
    if environ is not None:
        length = environ.get("CONTENT_LENGTH") or "0"
        start = environ.get(START_KEY)
        section.update(
            method=environ.get("REQUEST_METHOD"),
            path=environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
            query=_query(environ),
            body_size=int(length) if length.isdigit() else None,
            duration_ms=round((now - start) * 1000.0, 3) if start is not None else None,
        )
    return section


def exception_section(exception: BaseException | None) -> dict[str, Any] | None:
    if exception is None:
        return None
    cls = type(exception)
    message = getattr(exception, "detail", None) or str(exception)
    return {
        "type": cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}",
        "message": message,
        "trace": "".join(traceback.format_exception(cls, exception, exception.__traceback__)),
    }


def build_report(
    title: str,
    reporting: Reporting,
    *,
    error_id: str | None = None,
    is_fatal: bool = False,
    exception: BaseException | None = None,
    environ: Mapping[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    data: Any = None,
) -> dict[str, Any]:
    """A report: what happened, to which request, for which user, on which service."""
    if environ is None and has_request_context():
        environ = request.environ
    report = {
        "title": title,
        "error_id": error_id or uuid.uuid4().hex,
        "is_fatal": is_fatal,
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "service": dict(reporting.service),
        "request": _request_section(environ, perf_counter()),
        "user": {"id": current().user_id},
        "response": response,
        "exception": exception_section(exception),
        "data": data,
    }
    # A secret value can hide anywhere: an exception message, a trace's locals, data a handler passed.
    return _redacted(report, reporting.redact) if reporting.redact is not None else report


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item, redact) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(item, redact) for item in value]
    return value


def _where(environ: Mapping[str, Any] | None) -> str:
    if environ is None:
        return "outside a request"
    return f"{environ.get('REQUEST_METHOD')} {environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}"


def _prefix(reporting: Reporting) -> str:
    name = reporting.service.get("name")
    return f"{name}: " if name else ""


def report_crash(error: dict[str, Any], exception: BaseException | None) -> dict[str, Any] | None:
    """The fatal report of a 5xx Error response (called from the ``on_error`` hook)."""
    reporting = current_reporting()
    environ = request.environ if has_request_context() else None
    if environ is not None:
        environ[REPORTED_KEY] = True
    if exception is None or isinstance(exception, MacaronException):
        summary = getattr(exception, "detail", None) or error.get("error_description", "")
    else:
        summary = f"{type(exception).__name__}: {exception}"
    title = f"{_prefix(reporting)}{error.get('status')} {error.get('error')} on {_where(environ)}: {summary}"
    response = {key: error.get(key) for key in ("status", "error", "error_description", "user_message")}
    report = build_report(title, reporting, error_id=error.get("error_id"), is_fatal=True, exception=exception, environ=environ, response=response)
    reporting.send(report)
    return report


def report_response(reporting: Reporting, environ: Mapping[str, Any], status: int, exception: BaseException | None = None) -> dict[str, Any]:
    """The fatal report of a 5xx no Error response explains: a handler returned it, or an exception escaped the app."""
    if exception is None:
        title = f"{_prefix(reporting)}{status} on {_where(environ)}: the handler answered {status}"
    else:
        title = f"{_prefix(reporting)}{status} on {_where(environ)}: {type(exception).__name__} escaped the app: {exception}"
    report = build_report(title, reporting, is_fatal=True, exception=exception, environ=environ, response={"status": status})
    log.error("%s (error_id %s)", title, report["error_id"], exc_info=exception)
    reporting.send(report)
    return report


def report_slow_call(reporting: Reporting, environ: Mapping[str, Any] | None, status: int | None, duration_ms: float, limit_ms: float) -> dict[str, Any]:
    """The non-fatal report of a call that took longer than its threshold."""
    title = f"{_prefix(reporting)}slow call: {_where(environ)} took {duration_ms:.0f} ms (limit {limit_ms:g} ms)"
    data = {"duration_ms": round(duration_ms, 3), "limit_ms": limit_ms}
    report = build_report(title, reporting, environ=environ, response={"status": status} if status is not None else None, data=data)
    log.warning("%s (error_id %s)", title, report["error_id"])
    reporting.send(report)
    return report


# -- public API -----------------------------------------------------------------


def report_error(title: str, data: Any = None, exception: BaseException | None = None, *, is_fatal: bool = False) -> dict[str, Any]:
    """Send a report without failing the request: something went wrong that someone should look at.

    Inside a request the report carries its method, path, query, request id, user
    id and duration so far. ``data`` is any JSON-able value; ``exception`` adds
    its type, message and trace. Returns the report that was sent.
    """
    reporting = current_reporting()
    report = build_report(title, reporting, is_fatal=is_fatal, exception=exception, data=data)
    (log.error if is_fatal else log.warning)("%s (error_id %s)", title, report["error_id"])
    reporting.send(report)
    return report


def report_slow(max_ms: float) -> Callable[[F], F]:
    """Report calls of this endpoint slower than ``max_ms`` milliseconds (a non-fatal report).

    On a handler, as a decorator or through ``x-decorate-server``, ``max_ms``
    replaces the service's ``report_slow_calls_ms`` for that endpoint and, as for
    it, the time measured is the whole request. On a function called outside a
    request (a task, a script), the time measured is the function's own.
    """
    if isinstance(max_ms, bool) or not isinstance(max_ms, (int, float)) or max_ms <= 0:
        raise ValueError(f"report_slow: max_ms must be a number of milliseconds above 0, not {max_ms!r}")
    limit = float(max_ms)

    def decorator(function: F) -> F:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if has_request_context():
                request.environ[SLOW_KEY] = limit
                return function(*args, **kwargs)
            start = perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = (perf_counter() - start) * 1000.0
                if elapsed > limit:
                    _report_slow_function(function, elapsed, limit)

        return timed  # type: ignore[return-value]

    return decorator


def _report_slow_function(function: Callable[..., Any], elapsed: float, limit: float) -> None:
    reporting = current_reporting()
    name = f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"
    title = f"{_prefix(reporting)}slow call: {name}() took {elapsed:.0f} ms (limit {limit:g} ms)"
    report = build_report(title, reporting, data={"duration_ms": round(elapsed, 3), "limit_ms": limit, "function": name})
    log.warning("%s (error_id %s)", title, report["error_id"])
    try:
        reporting.send(report)
    except Exception:  # never let reporting break the caller
        log.exception("sending report %s failed", report["error_id"])
