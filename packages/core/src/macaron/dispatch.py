"""Requests reach their view without the URL adapters Flask binds for each of them.

Flask binds a URL adapter to every request (host parsing, a second adapter for the app
context), runs the routing state machine, then builds the response's headers through
werkzeug's general path: a third of a bare Flask request's own time. :class:`MacaronFlask`
looks a fixed path (``GET /v1/books``, most of a spec's) up in a table built once, matches
a path with variables with one adapter bound at start-up, pushes Flask's contexts as Flask
does (``request``, ``g``, ``session``, ``url_for``, before/after/teardown functions and
signals all work as they would), and sends a plain response's headers as they are.

Anything this cannot answer exactly as Flask's routing would goes through Flask
unchanged: HEAD and OPTIONS, a path that redirects or is not found, a method the path
does not take, a path that is not ASCII, a websocket upgrade, host or subdomain
matching, ``SERVER_NAME`` or ``TRUSTED_HOSTS``, and a Flask whose private context layout
this was not written for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

import flask.globals
from flask import Flask
from flask.ctx import RequestContext
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter, Rule

_cv_app = getattr(flask.globals, "_cv_app", None)
_cv_request = getattr(flask.globals, "_cv_request", None)
# What the context below sets in place of RequestContext.__init__: if Flask changes them, Flask does the routing.
_SUPPORTED = _cv_app is not None and _cv_request is not None and {"_cv_tokens", "_session", "_after_request_functions"} <= set(
    RequestContext.__init__.__code__.co_names
)
# Statuses whose headers and body werkzeug changes (no Content-Length, no body, no entity headers).
_NO_FAST_STATUS = frozenset({204, 304})

Route = tuple[Rule, dict[str, Any]]


class _RoutedContext(RequestContext):
    """A request context whose route is already known: its URL adapter is made only if something asks (``url_for``)."""

    def __init__(self, app: Flask, environ: dict[str, Any], rule: Rule, view_args: Mapping[str, Any]) -> None:
        self.app = app
        request = app.request_class(environ)
        request.json_module = app.json
        request.url_rule = rule
        request.view_args = dict(view_args)
        self.request = request
        self.flashes = None
        self._session = None
        self._after_request_functions = []
        self._cv_tokens = []

    @cached_property
    def url_adapter(self) -> MapAdapter | None:  # type: ignore[override]
        try:
            return self.app.create_url_adapter(self.request)
        except HTTPException:  # as RequestContext.__init__: no adapter for a host Flask refuses
            return None

    def match_request(self) -> None:
        """Already matched: the table gave the rule."""

    def push(self) -> None:
        # RequestContext.push, less the URL matching its url_adapter would trigger.
        assert _cv_app is not None and _cv_request is not None
        app_ctx = _cv_app.get(None)
        if app_ctx is None or app_ctx.app is not self.app:
            app_ctx = self.app.app_context()
            app_ctx.push()
        else:
            app_ctx = None
        self._cv_tokens.append((_cv_request.set(self), app_ctx))
        if self._session is None:
            interface = self.app.session_interface
            session = interface.open_session(self.app, self.request)
            self._session = interface.make_null_session(self.app) if session is None else session

    def copy(self) -> RequestContext:
        return RequestContext(self.app, self.request.environ, request=self.request, session=self._session)


class MacaronFlask(Flask):
    """The Flask app of a macaron service: fixed-path routes dispatched from a table (see the module's docstring)."""

    _fixed_routes: dict[tuple[str, str], Route] | None = None
    _adapter: MapAdapter | None = None

    def add_url_rule(self, *args: Any, **kwargs: Any) -> None:
        super().add_url_rule(*args, **kwargs)
        self._fixed_routes = None  # rebuilt on the next request

    def routes_directly(self) -> bool:
        """Whether requests may skip Flask's per-request URL adapters: not when the host takes part in routing or is checked."""
        config = self.config
        return _SUPPORTED and not (self.url_map.host_matching or self.subdomain_matching or config.get("SERVER_NAME") or config.get("TRUSTED_HOSTS"))

    def fixed_routes(self) -> dict[tuple[str, str], Route]:
        """(method, PATH_INFO) -> (rule, view args) for every route the table answers as Flask's routing would."""
        table: dict[tuple[str, str], Route] = {}
        if not self.routes_directly():
            return table
        for rule in self.url_map.iter_rules():
            if rule.arguments or rule.redirect_to is not None or rule.build_only or rule.websocket or rule.host or rule.subdomain:
                continue
            # PATH_INFO is latin-1 text of the raw bytes: only an ASCII rule is the same string there.
            if not rule.rule.isascii():
                continue
            for method in rule.methods or ():
                if method in ("HEAD", "OPTIONS"):
                    continue  # werkzeug strips HEAD's body; Flask answers OPTIONS itself
                table.setdefault((method, rule.rule), (rule, {}))  # a rule with defaults has arguments
        return table

    def _routing(self) -> tuple[dict[tuple[str, str], Route], MapAdapter | None]:
        table = self.fixed_routes()
        # Bound once, with the subdomain Flask binds every request to when subdomains are not matched.
        adapter = self.url_map.bind("localhost", subdomain=self.url_map.default_subdomain or "") if self.routes_directly() else None
        self._fixed_routes, self._adapter = table, adapter
        return table, adapter

    def wsgi_app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        table, adapter = self._fixed_routes, self._adapter
        if table is None:
            table, adapter = self._routing()
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        route = table.get((method, path))
        if route is None:
            if adapter is None or method in ("HEAD", "OPTIONS") or not path.isascii() or "HTTP_UPGRADE" in environ:
                return super().wsgi_app(environ, start_response)
            try:
                rule, view_args = adapter.match(path, method, return_rule=True)
            except HTTPException:  # not found, not this method, a redirect: Flask answers, as it always would
                return super().wsgi_app(environ, start_response)
        else:
            rule, view_args = route
        # Flask.wsgi_app with the context above; the same dispatch, error handling and teardown.
        assert _cv_app is not None and _cv_request is not None
        ctx = _RoutedContext(self, environ, rule, view_args)
        error: BaseException | None = None
        try:
            try:
                ctx.push()
                response = self.full_dispatch_request()
            except Exception as exc:
                error = exc
                response = self.handle_exception(exc)
            except BaseException as exc:  # as Flask: the error reaches teardown, then goes on up
                error = exc
                raise
            return send(response, environ, start_response)
        finally:
            if "werkzeug.debug.preserve_context" in environ:
                environ["werkzeug.debug.preserve_context"](_cv_app.get())
                environ["werkzeug.debug.preserve_context"](_cv_request.get())
            if error is not None and self.should_ignore_error(error):
                error = None
            ctx.pop(error)


def send(response: Any, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """``response(environ, start_response)``, with a body already in memory sent without werkzeug's header pass.

    That pass fixes up what a plain response does not have: a Location or Content-Location
    to encode (or make absolute), a missing Content-Length, the headers of a 1xx/204/304,
    a body to encode or stream, close callbacks.
    """
    body = response.response
    if (
        type(body) is list
        and response.status_code >= 200
        and response.status_code not in _NO_FAST_STATUS
        and not response._on_close
        and not response.direct_passthrough
        and all(type(chunk) is bytes for chunk in body)
    ):
        headers = response.headers
        if "Content-Length" in headers and "Location" not in headers and "Content-Location" not in headers:
            start_response(response.status, headers.to_wsgi_list())
            return body  # type: ignore[no-any-return]
    result: Iterable[bytes] = response(environ, start_response)
    return result
