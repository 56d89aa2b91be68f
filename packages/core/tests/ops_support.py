"""What the request-id, logging, crash-reporting and CORS tests share: a service, a report sink, clean logging."""

from __future__ import annotations

import itertools
import logging
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_sinks = itertools.count()

SPEC = """
paths:
  /things/{thing_id}:
    get:
      operationId: getThing
      x-bind-server: HANDLERS.get_thing
      parameters:
        - {name: thing_id, in: path, required: true, type: integer}
        - {name: as_user, in: query, type: string}
        - {name: token, in: query, type: string}
      responses:
        200: {description: a thing, schema: {type: object, additionalProperties: true}}
  /crash:
    post:
      operationId: crash
      x-bind-server: HANDLERS.crash
      parameters:
        - {name: payload, in: body, required: false, schema: {type: object, additionalProperties: true}}
        - {name: a, in: query, type: string}
        - {name: token, in: query, type: string}
      responses:
        200: {description: never answered}
  /bad-response:
    get:
      operationId: badResponse
      x-bind-server: HANDLERS.bad_response
      responses:
        200:
          description: an id that must be an integer
          schema: {type: object, properties: {id: {type: integer}}}
  /report:
    get:
      operationId: report
      x-bind-server: HANDLERS.report
      responses:
        200: {description: done, schema: {type: object, additionalProperties: true}}
  /slow:
    get:
      operationId: slow
      x-bind-server: HANDLERS.slow
      parameters: [{name: ms, in: query, type: integer, required: true}]
      responses:
        200: {description: done, schema: {type: object}}
  /slow-decorated:
    get:
      operationId: slowDecorated
      x-bind-server: HANDLERS.slow
      x-decorate-server: [HANDLERS.slow_10]
      parameters: [{name: ms, in: query, type: integer, required: true}]
      responses:
        200: {description: done, schema: {type: object}}
  /slow-lenient:
    get:
      operationId: slowLenient
      x-bind-server: HANDLERS.slow_lenient
      parameters: [{name: ms, in: query, type: integer, required: true}]
      responses:
        200: {description: done, schema: {type: object}}
  /leak:
    get:
      operationId: leak
      x-bind-server: HANDLERS.leak
      responses:
        200: {description: never answered}
  /unavailable:
    get:
      operationId: unavailable
      x-bind-server: HANDLERS.unavailable
      responses:
        503: {description: the handler answers 503 itself}
"""

HANDLERS = """
import logging
import time

from flask import Response

from macaron import context
from macaron.reporting import report_error, report_slow

log = logging.getLogger("test.handlers")


def get_thing(thing_id, as_user, token):
    if as_user:
        context.update(user_id=as_user)  # what the JWT check does once a token is verified
    log.warning("serving thing %s", thing_id)
    return {"id": thing_id, "user": context.get_userid(), "request_id": context.get_request_id()}


def crash(payload, a, token):
    context.update(user_id="u-1")
    log.warning("about to crash")
    raise ValueError("kaboom")


def bad_response():
    return {"id": "not a number"}


def report():
    try:
        {}["sku-42"]
    except KeyError as exc:
        report_error("inventory out of sync", data={"order": 7}, exception=exc)
    return {"done": True}


def slow(ms):
    time.sleep(ms / 1000)
    return {}


slow_10 = report_slow(max_ms=10)


@report_slow(max_ms=2000)
def slow_lenient(ms):
    time.sleep(ms / 1000)
    return {}


def leak():
    from macaron import get_config

    password = get_config()["db_password"]
    log.warning("connecting with %s", password)
    raise RuntimeError(f"login refused for password {password}")


def unavailable():
    return Response(b"", status=503)
"""


class Sink:
    """A reporter importable by dotted name (for ``error_reporter``) that keeps every report it gets."""

    def __init__(self) -> None:
        self.module = f"report_sink_{next(_sinks)}"
        self.reports: list[dict[str, Any]] = []
        self.name = f"{self.module}.send"

    def send(self, report: dict[str, Any]) -> None:
        self.reports.append(report)

    def only(self) -> dict[str, Any]:
        assert len(self.reports) == 1, [report["title"] for report in self.reports]
        return self.reports[0]


def failing_reporter(report: dict[str, Any]) -> None:
    raise RuntimeError("the error tracker is down")


@contextmanager
def report_sink() -> Iterator[Sink]:
    sink = Sink()
    module = types.ModuleType(sink.module)
    module.send = sink.send  # type: ignore[attr-defined]
    module.fail = failing_reporter  # type: ignore[attr-defined]
    sys.modules[sink.module] = module
    try:
        yield sink
    finally:
        del sys.modules[sink.module]


@contextmanager
def logging_restored() -> Iterator[None]:
    """Undo what a service's start-up did to the root logger (level, macaron's handler), for the next tests."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers

