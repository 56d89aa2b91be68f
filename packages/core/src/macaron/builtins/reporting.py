"""Built-in: crash reports for every 5xx Error response, sent to the service's reporters.

The reporters (``error_reporter`` in ``macaron.yaml``, and plugins implementing
``on_report``) and the slow-call threshold are resolved once at start-up; a bad
``error_reporter`` stops start-up with an error naming it.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from macaron import reporting
from macaron.config import Config
from macaron.hookspecs import hookimpl
from macaron.spec import Operation

log = logging.getLogger("macaron.reporting")


@hookimpl(tryfirst=True)  # before the request middleware is installed, which reads the threshold
def startup(app: Flask, config: Config) -> None:
    from macaron.app import service_of

    try:
        service = service_of(app)
    except LookupError:  # the hook called on an app of one's own
        version, plugin_manager = None, None
    else:
        version, plugin_manager = service.version, service.plugin_manager
    reporting.install(app, reporting.Reporting.from_config(config, plugin_manager, version))


@hookimpl(trylast=True)  # after the other on_error hooks, so the report shows the Error body as sent
def on_error(error: dict[str, Any], exception: BaseException | None, operation: Operation | None) -> None:
    if not isinstance(error.get("status"), int) or error["status"] < 500:
        return
    try:
        reporting.report_crash(error, exception)
    except Exception:  # reporting must never change the response, nor stop the other hooks
        log.exception("making the crash report of error %s failed", error.get("error_id"))
