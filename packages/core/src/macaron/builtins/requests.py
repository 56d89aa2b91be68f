"""Built-in: a fresh call context and a request id for every request, the request log line, CORS.

Installed as a WSGI middleware around the Flask app at start-up, so it sees every
response, errors included, and costs a few microseconds: the request id is read
or made, a new :class:`macaron.context.CallContext` begins (and ends after the
response, so no identity outlives its request), ``X-Request-ID`` is added to the
response, and a line is logged only when INFO is enabled.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from random import getrandbits
from time import perf_counter
from typing import Any

from flask import Flask

from macaron import reporting as _reporting
from macaron.config import Config
from macaron.context import CallContext, begin, current, end
from macaron.cors import CorsMiddleware, StartResponse, WSGIApp, cors_settings
from macaron.hookspecs import hookimpl
from macaron.log import setup_from_config
from macaron.spec import Operation

HEADER = "X-Request-ID"
MAX_LENGTH = 128
MAX_CHAIN = 32
# Ids in logs and headers must stay one token: no spaces, quotes or line breaks; anything else is replaced.
_SANE_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:=+/-]{{0,{MAX_LENGTH - 1}}}")
_sane = _SANE_ID.fullmatch
START_KEY, SLOW_KEY, REPORTED_KEY, STREAMED_KEY = _reporting.START_KEY, _reporting.SLOW_KEY, _reporting.REPORTED_KEY, _reporting.STREAMED_KEY

request_log = logging.getLogger("macaron.request")


def new_request_id() -> str:
    """A fresh request id: 16 hex digits (64 random bits).

    An id is not a secret, so Python's fast generator will do (3 times cheaper than
    os.urandom); it is reseeded in every forked worker, so workers do not repeat ids.
    """
    return f"{getrandbits(64):016x}"


def sane_request_id(value: str | None) -> str:
    """``value`` if it is a sane request id (1-128 characters of ``A-Za-z0-9._:=+/-``), else a fresh one."""
    if value is not None and _sane(value):
        return value
    return new_request_id()


def _printable(path: str) -> str:
    """The path as logged: WSGI gives it as latin-1; control characters escaped so a URL cannot forge a log line."""
    try:
        path = path.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


class RequestMiddleware:
    """Begins and ends each request's call context; request id, request log line, 5xx and slow-call reports."""

    def __init__(self, app: WSGIApp, reporting: _reporting.Reporting | None) -> None:
        self.app = app
        self.reporting = reporting
        self.slow_ms = reporting.slow_ms if reporting is not None else None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start = perf_counter()
        request_id = environ.get("HTTP_X_REQUEST_ID")
        if request_id is None or not _sane(request_id):
            request_id = f"{getrandbits(64):016x}"
        environ[START_KEY] = start
        chain = environ.get("HTTP_X_CALL_CHAIN")
        if chain:  # services this call went through, set by macaron's clients; kept only when sane
            context = CallContext(request_id=request_id, call_chain=[name for name in chain.split(",")[:MAX_CHAIN] if _sane(name)])
        else:
            context = CallContext(request_id=request_id)
        token = begin(context)
        status = ""

        def respond(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal status
            status = status_line
            headers.append((HEADER, request_id))
            return start_response(status_line, headers, exc_info)

        try:
            response = self.app(environ, respond)
        except BaseException as exc:  # the WSGI server answers 500; the report says why
            try:
                self.finish(environ, status, start, exc)
            finally:
                end(token)
            raise
        if STREAMED_KEY in environ:  # a body produced after this returns: keep its context until it is sent
            streamed = StreamedBody(response, current(), lambda broke: self.finish(environ, "500" if broke else status, start, broke))
            end(token)
            return streamed
        # The common case (2xx-4xx, no threshold, log quiet) does nothing more than end the context.
        if status[:1] == "5" or self.slow_ms is not None or SLOW_KEY in environ or request_log.isEnabledFor(logging.INFO):
            try:
                self.finish(environ, status, start)
            finally:
                end(token)
        else:
            end(token)
        return response

    def finish(self, environ: dict[str, Any], status_line: str, start: float, escaped: BaseException | None = None) -> None:
        """After the response: reports when it is a 5xx or slow, and the log line when INFO is on."""
        elapsed = perf_counter() - start
        limit = environ.get(SLOW_KEY, self.slow_ms)
        failed = status_line[:1] == "5" or not status_line
        if self.reporting is not None:
            if failed and REPORTED_KEY not in environ:
                _reporting.report_response(self.reporting, environ, int(status_line[:3] or 500), escaped)
            if limit is not None and elapsed * 1000.0 > limit:
                _reporting.report_slow_call(self.reporting, environ, int(status_line[:3] or 500), elapsed * 1000.0, limit)
        if request_log.isEnabledFor(logging.INFO):
            method = environ.get("REQUEST_METHOD", "")
            path = _printable(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
            code = int(status_line[:3] or 500)
            ms = round(elapsed * 1000.0, 2)
            request_log.info("%s %s %s %.2fms", method, path, code, ms, extra={"method": method, "path": path, "status": code, "ms": ms})


class StreamedBody:
    """A response body produced while the server sends it: each chunk is made in the request's call context.

    A handler that returns a streamed ``Response`` (a generator, ``send_file``)
    has its body made after the middleware has returned. Without this, ``get_userid()`` and the request id would be gone
    in the generator, and the request's log line would come before its body.
    The context is set only while a chunk is made, so it cannot leak into the
    server's code between chunks. A body that raises half-way is logged and
    reported as a 500, though the client already has its 200 status line.
    """

    def __init__(self, body: Iterable[bytes], context: CallContext, finish: Callable[[BaseException | None], None]) -> None:
        self.body = body
        self.context = context
        self.finish = finish
        self.broke: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self.body)
        while True:
            token = begin(self.context)
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except BaseException as exc:
                self.broke = exc
                raise
            finally:
                end(token)
            yield chunk

    def close(self) -> None:
        """Called by the WSGI server once the body is sent (or the client went away): the log line and reports."""
        token = begin(self.context)
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            try:
                self.finish(self.broke)
            finally:
                end(token)


@hookimpl
def startup(app: Flask, config: Config) -> None:
    setup_from_config(config)
    wsgi: WSGIApp = app.wsgi_app
    settings = cors_settings(config)
    if settings is not None:
        wsgi = CorsMiddleware(wsgi, settings)
    app.wsgi_app = RequestMiddleware(wsgi, _reporting.for_app(app))  # type: ignore[method-assign]


@hookimpl(tryfirst=True)
def on_error(error: dict[str, Any], exception: BaseException | None, operation: Operation | None) -> None:
    request_id = current().request_id
    if request_id is not None:
        error["request_id"] = request_id
