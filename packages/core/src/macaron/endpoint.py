"""One operation served: parameters read and validated, the handler called, its result checked.

Everything that depends only on the spec is decided in :class:`Endpoint`'s
constructor at start-up; ``__call__`` is the per-request path and does only what
depends on the request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
from flask import Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from macaron.error_bodies import FitFor, operation_fits
from macaron.errors import (
    BadResponse,
    MacaronException,
    MalformedJSON,
    UnsupportedMediaType,
    ValidationError,
)
from macaron.model_factory import ModelFactory
from macaron.models import Model, _identity, to_wire
from macaron.parameters import (
    JSON_MIME,
    MISSING,
    ParameterReader,
    media_matches,
    parameter_readers,
    query_as_sent,
    raw_body_checkers,
    raw_value,
    request_schema,
)
from macaron.reporting import STREAMED_KEY
from macaron.spec import Operation, Parameter, RawBody, response_key
from macaron.styles import (
    MalformedParameter,
)
from macaron.validation import Checker, escape
from macaron.variants import response_variant

log = logging.getLogger("macaron")

# request.environ: (value, problems) of a body read as text or bytes, which the request schema does not describe.
RAW_BODY_KEY = "macaron.raw_body"


class Endpoint:
    """The Flask view of one operation."""

    raw_bodies: list[tuple[RawBody, Checker | None]] = []  # a body that may be text or bytes: its types, most precise first

    def __init__(
        self,
        operation: Operation,
        handler: Callable[..., Any],
        factory: ModelFactory,
        definitions: dict[str, Any],
        error_response: Callable[[BaseException, Operation | None, FitFor | None], Response],
    ) -> None:
        self.operation = operation
        self.handler = handler
        self.__name__ = operation.name
        parameters = operation.parameters
        readers = parameter_readers(operation, factory)
        self.path_readers = [r for r in readers if r.location == "path"]
        self.query_readers = [r for r in readers if r.location == "query"]
        self.header_readers = [r for r in readers if r.location == "header"]
        self.cookie_readers = [r for r in readers if r.location == "cookie"]
        self.form_readers = [r for r in readers if r.location == "formData"]
        # Arrays and objects whose delimiters an encoded value may contain (a%2Cb,c): read from the text as sent.
        self.raw_path = any(r.split_raw and r.segment is not None for r in self.path_readers)
        self.raw_query = any(r.split_raw for r in self.query_readers)
        for parameter in parameters:
            # A default that breaks its own schema would turn the server's mistake into the caller's 400.
            if parameter.has_default and parameter.default is not None:
                problems = Checker(parameter.schema, definitions).problems(parameter.default)
                if problems:
                    detail = "; ".join(f"{p['field'] or '/'}: {p['message']}" for p in problems)
                    raise operation.error(f"the default of {parameter.location} parameter '{parameter.name}' breaks its own schema: {detail}")
        body = next((p for p in parameters if p.location == "body"), None)
        self.body = body
        self.body_required = bool(body and body.required)
        self.body_convert = factory.converter(body.schema) if body else _identity
        if body and self.body_convert is _identity and body.schema.get("type", "object") == "object" and "properties" in body.schema:
            self.body_convert = factory.inline_model(body.schema, f"{operation.operation_id or 'Inline'}Body")
        self.accepts_json = any(JSON_MIME in mime or "+json" in mime for mime in operation.consumes)
        self.produces_json = any(JSON_MIME in mime or "+json" in mime for mime in operation.produces)
        self.produces = operation.produces[0] if operation.produces else JSON_MIME
        groups = (("path", self.path_readers), ("query", self.query_readers), ("header", self.header_readers), ("cookie", self.cookie_readers), ("formData", self.form_readers))
        self.reader_groups = [(location, readers) for location, readers in groups if readers]

        accept_read_only = factory.api.read_only_in_requests == "accept"
        self.request_checker = Checker(request_schema(operation, definitions, accept_read_only), definitions)
        self.check_request = self.request_checker.is_valid
        if body is not None and body.raw_bodies:
            self._setup_raw_bodies(body, definitions)

        # Response checkers by status; the status a model class is returned with by default.
        self.response_checkers: dict[int | str, Checker | None] = {}
        self.model_status: dict[type, int] = factory.model_statuses(operation.responses)
        self.default_status = next((s for s in sorted(k for k in operation.responses if isinstance(k, int)) if 200 <= s < 300), 200)
        for status, response in operation.responses.items():
            self.response_checkers[status] = Checker(response_variant(response.schema, definitions), definitions) if response.schema is not None else None
        # What of macaron's Error body each declared error response accepts, probed now rather than per error.
        fit_for = operation_fits(self.response_checkers, {status: r.schema for status, r in operation.responses.items()}, definitions, f"{operation.file}: operation {operation.name}")

        def respond_error(exc: BaseException, operation: Operation | None) -> Response:
            return error_response(exc, operation, fit_for)

        self.error_response = respond_error

    def _setup_raw_bodies(self, body: Parameter, definitions: dict[str, Any]) -> None:
        """A body that may come as text or bytes: read, checked and passed on by these (JSON bodies keep the plain path)."""
        self.raw_bodies = raw_body_checkers(body.raw_bodies, definitions)
        self.body_types = ([JSON_MIME] if body.json_body else []) + [raw.media_type for raw in body.raw_bodies]
        self._read_body = self._read_any_body  # type: ignore[method-assign]
        check_values = self.check_request

        def check_request(values: dict[str, Any]) -> bool:
            raw = request.environ.get(RAW_BODY_KEY)
            return check_values(values) and not (raw and raw[1])

        self.check_request = check_request

    def _read_any_body(self) -> Any:
        """A JSON body as ``_read_body`` reads it; a body of another declared type is read as text or bytes, and set aside."""
        assert self.body is not None
        data = request.get_data(cache=False)
        environ = request.environ
        if not data:
            if self.body_required:
                environ[RAW_BODY_KEY] = (None, [{"field": "/body", "message": "a request body is required"}])
            return MISSING
        mimetype = request.mimetype
        if self.body.json_body and (not mimetype or mimetype == JSON_MIME or mimetype.endswith("+json")):
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise MalformedJSON(f"the body is not valid JSON: {exc}") from None
        sent = mimetype or "application/octet-stream"  # RFC 9110: a body without a type may be taken as bytes
        found = next(((raw, checker) for raw, checker in self.raw_bodies if media_matches(raw.media_type, sent)), None)
        if found is None:
            raise UnsupportedMediaType(f"a body of type {mimetype or '(none)'} is not accepted here: send {' or '.join(self.body_types)}")
        raw, checker = found
        environ[RAW_BODY_KEY] = raw_value(raw, checker, data, request.mimetype_params.get("charset", "utf-8"))
        return MISSING

    # -- the request path -------------------------------------------------------

    def __call__(self, **path_args: str) -> Any:
        try:
            values: dict[str, Any] = {}
            if self.path_readers:
                if self.raw_path:
                    values["path"] = self._read_path(path_args)
                else:
                    values["path"] = {reader.name: reader.parse(path_args[reader.python_name]) for reader in self.path_readers}
            if self.query_readers:
                values["query"] = self._read_query() if self.raw_query else self._read(self.query_readers, request.args)
            if self.header_readers:
                values["header"] = self._read(self.header_readers, request.headers)
            if self.cookie_readers:
                values["cookie"] = self._read(self.cookie_readers, request.cookies)
            if self.form_readers:
                values["formData"] = self._read_form()
            if self.body is not None:
                body = self._read_body()
                if body is not MISSING:
                    values["body"] = body
            if not self.check_request(values):
                raise ValidationError(self._request_problems(values))
            args, kwargs = self._arguments(values)
            result = self.handler(*args, **kwargs)
            return self.respond(result)
        except MalformedParameter:
            return self.error_response(self._malformed(path_args), self.operation)
        except MacaronException as exc:
            return self.error_response(exc, self.operation)
        except HTTPException as exc:
            if exc.code is None:
                raise  # abort(response): Flask sends that response as is
            return self.error_response(exc, self.operation)  # 413 while reading the body, abort(401)...
        except Exception as exc:
            return self.error_response(exc, self.operation)

    def _read(self, readers: list[ParameterReader], source: Any) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for reader in readers:
            reader.put(found, reader.read(source))
        return found

    def _raw_segments(self) -> list[str] | None:
        """The request path as sent, in segments; None when the server does not pass it on or nothing in it is encoded."""
        environ = request.environ
        uri: str | None = environ.get("RAW_URI") or environ.get("REQUEST_URI")  # gunicorn, werkzeug, uWSGI, mod_wsgi
        if not uri or "%" not in uri:
            return None
        path = uri.partition("?")[0]
        if not path.startswith("/"):  # a request target in absolute form (http://host/path), as sent to proxies
            path = urlsplit(path).path
        return path.split("/")

    def _path_value(self, reader: ParameterReader, path_args: dict[str, str], segments: list[str] | None) -> Any:
        text = path_args[reader.python_name]
        if segments is not None and reader.split_raw and reader.segment is not None and -reader.segment <= len(segments):
            raw = segments[reader.segment]
            if unquote(raw) == text:  # the segment werkzeug routed on: otherwise read what werkzeug decoded
                return reader.parse_raw(raw)
        return reader.parse(text)

    def _read_path(self, path_args: dict[str, str]) -> dict[str, Any]:
        segments = self._raw_segments()
        return {reader.name: self._path_value(reader, path_args, segments) for reader in self.path_readers}

    def _read_query(self) -> dict[str, Any]:
        """The query when some parameter's delimiters may be encoded in its values: those are read from the query as sent."""
        query = request.environ.get("QUERY_STRING", "")
        if "%" not in query:
            return self._read(self.query_readers, request.args)
        raw = query_as_sent(query)
        found: dict[str, Any] = {}
        for reader in self.query_readers:
            reader.put(found, reader.read_raw(raw) if reader.split_raw else reader.read(request.args))
        return found

    def _malformed(self, path_args: dict[str, str]) -> ValidationError:
        """Every problem of a request with a parameter its style cannot read: the others are read and validated too."""
        problems: list[dict[str, str]] = []
        values: dict[str, Any] = {}
        sources = {"query": request.args, "header": request.headers, "cookie": request.cookies}
        segments = self._raw_segments() if self.raw_path else None
        query = request.environ.get("QUERY_STRING", "")
        raw_query = query_as_sent(query) if self.raw_query and "%" in query else None
        for location, readers in (("path", self.path_readers), ("query", self.query_readers), ("header", self.header_readers), ("cookie", self.cookie_readers)):
            if not readers:
                continue
            group = values[location] = {}
            for reader in readers:
                try:
                    if location == "path":
                        value = self._path_value(reader, path_args, segments)
                    elif raw_query is not None and location == "query" and reader.split_raw:
                        value = reader.read_raw(raw_query)
                    else:
                        value = reader.read(sources[location])
                except MalformedParameter as exc:
                    problems.append({"field": f"/{location}/{escape(reader.name)}", "message": str(exc)})
                    continue
                reader.put(group, value)
        unreadable = set()  # a form or body that cannot be read (too large, not JSON): the parameters' problems come first
        try:
            if self.form_readers:
                values["formData"] = self._read_form()
        except (MacaronException, HTTPException):
            unreadable.add("/formData")
        if self.body is not None:
            try:
                body = self._read_body()
            except (MacaronException, HTTPException):
                unreadable.add("/body")
            else:
                if body is not MISSING:
                    values["body"] = body
        reported = {problem["field"] for problem in problems}
        for problem in self._request_problems(values):
            if problem["field"] not in reported and not any(problem["field"].startswith(part) for part in unreadable):
                problems.append(problem)
        return ValidationError(problems)

    def _read_form(self) -> dict[str, Any]:
        form = request.form
        files = request.files
        found: dict[str, Any] = {}
        for reader in self.form_readers:
            if reader.is_file:
                if reader.name in files:
                    found[reader.name] = True  # validated for presence; the handler gets the upload itself
                continue
            reader.put(found, reader.read(form))
        return found

    def _read_body(self) -> Any:
        data = request.get_data(cache=False)
        if not data:
            return MISSING
        mimetype = request.mimetype
        if mimetype and mimetype != JSON_MIME and not mimetype.endswith("+json"):
            if self.accepts_json:
                raise UnsupportedMediaType(f"expected a body of type {JSON_MIME}, got {mimetype}")
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise MalformedJSON(f"the body is not valid JSON: {exc}") from None

    def _request_problems(self, values: dict[str, Any]) -> list[dict[str, str]]:
        problems = self.request_checker.problems(values)
        raw = request.environ.get(RAW_BODY_KEY)
        if raw is not None:
            problems = problems + raw[1]
        for problem in problems:
            if problem["field"] == "/body" and problem["message"] == "is required":
                problem["message"] = "a request body is required"
        return problems

    def _arguments(self, values: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        kwargs: dict[str, Any] = {}
        for location, readers in self.reader_groups:
            group = values[location]
            for reader in readers:
                value = group.get(reader.name, MISSING)
                if value is MISSING:
                    kwargs[reader.python_name] = None
                elif reader.is_file:
                    kwargs[reader.python_name] = request.files[reader.name]
                elif value is None:
                    kwargs[reader.python_name] = value
                else:
                    kwargs[reader.python_name] = reader.convert(value)
        if self.body is None:
            return (), kwargs
        body = values.get("body")
        if body is None and self.raw_bodies:
            raw = request.environ.get(RAW_BODY_KEY)
            return ((None if raw is None else raw[0]),), kwargs
        return ((None if body is None else self.body_convert(body)),), kwargs

    def respond(self, result: Any) -> Any:
        if isinstance(result, WerkzeugResponse):
            if result.is_streamed:  # the request middleware keeps the call context for the body
                request.environ[STREAMED_KEY] = True
            return result
        status: int | None = None
        headers = None
        if type(result) is tuple:
            if len(result) == 3:
                result, status, headers = result
            elif len(result) == 2:
                result, status = result
        if isinstance(result, MacaronException):
            return self.error_response(result, self.operation)
        if isinstance(result, Model):
            data: Any = result._data
            if status is None:
                status = self.model_status.get(type(result), self.default_status)
        else:
            data = None if result is None else to_wire(result)
        if status is None:
            status = self.default_status
        if not self.produces_json and isinstance(data, (str, bytes)):
            return Response(data, status=status, mimetype=self.produces, headers=headers)
        checkers = self.response_checkers
        if status in checkers:  # the common case, without a call
            checker = checkers[status]
        else:
            key = response_key(checkers, status)
            if key is None:
                raise BadResponse(f"{self.operation.name} returned status {status}, which its spec does not declare")
            checker = checkers[key]
        if checker is None:
            if data is not None:
                raise BadResponse(f"{self.operation.name} returned a body for status {status}, for which its spec declares none")
            empty = Response(b"", status=status, headers=headers)
            del empty.headers["Content-Type"]  # no body, no type (not werkzeug's default text/html)
            return empty
        try:
            if not checker.is_valid(data):
                problems = checker.problems(data)
                detail = "; ".join(f"{p['field'] or '/'}: {p['message']}" for p in problems)
                raise BadResponse(f"{self.operation.name} returned a {status} body that breaks its spec: {detail}")
            return Response(orjson.dumps(data), status=status, mimetype=JSON_MIME, headers=headers)
        except (TypeError, ValueError) as exc:  # a Python object JSON has no form for (a set, bytes...)
            raise BadResponse(f"{self.operation.name} returned a {status} body that is not JSON: {exc}") from None

