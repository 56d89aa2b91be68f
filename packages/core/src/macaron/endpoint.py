"""One operation served: parameters read and validated, the handler called, its result checked.

Everything that depends only on the spec is decided in :class:`Endpoint`'s
constructor at start-up; ``__call__`` is the per-request path and does only what
depends on the request.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import orjson
from flask import Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from macaron.errors import (
    BadResponse,
    MacaronException,
    MalformedJSON,
    UnsupportedMediaType,
    ValidationError,
)
from macaron.models import Model, _identity, copy_wire, to_wire
from macaron.reporting import STREAMED_KEY
from macaron.schemas import REF_PREFIX, Checker, ModelFactory, escape
from macaron.spec import Operation, Parameter, schema_shape

log = logging.getLogger("macaron")

JSON_MIME = "application/json"
SEPARATORS = {"csv": ",", "ssv": " ", "tsv": "\t", "pipes": "|"}
# OpenAPI 3 styles that separate values (items, or an object's names and values) with one character.
STYLE_SEPARATORS = {"simple": ",", "form": ",", "spaceDelimited": " ", "pipeDelimited": "|"}
LOCATIONS = ("path", "query", "header", "cookie", "formData")  # where non-body parameters come from, in request_schema's order
_INT_LOW, _INT_HIGH = -(2**63), 2**64 - 1
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


def _scalar_coercer(schema: dict[str, Any]) -> Callable[[str], Any]:
    """Text from a URL, header or form as the JSON value its schema expects; left as text if it is not one."""
    types = schema.get("type")
    kind = next((t for t in types if t != "null"), None) if isinstance(types, list) else types

    if kind == "integer":

        def to_int(raw: str) -> Any:
            try:
                value = int(raw)
            except ValueError:
                return raw
            # Beyond 64 bits JSON libraries (orjson) fail: left as text, validation rejects it.
            return value if _INT_LOW <= value <= _INT_HIGH else raw

        return to_int
    if kind == "number":

        def to_number(raw: str) -> Any:
            try:
                value = int(raw)  # exact, where float() would round a long integer
                if _INT_LOW <= value <= _INT_HIGH:
                    return value
            except ValueError:
                pass
            try:
                number = float(raw)
            except ValueError:
                return raw
            # JSON has no NaN or infinity: left as text, validation names the parameter and the value.
            return number if math.isfinite(number) else raw

        return to_number
    if kind == "boolean":
        return lambda raw: _BOOLEANS.get(raw.lower(), raw)
    return _identity


class MalformedParameter(Exception):
    """Parameter text its style cannot read (``5`` where matrix style writes ``;id=5``): a 400 naming the parameter."""


def _resolved(schema: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    """A schema with its top ``$ref`` followed: how text is read depends on the type it names."""
    seen: set[str] = set()
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and schema["$ref"] not in seen:
        seen.add(schema["$ref"])
        schema = definitions.get(schema["$ref"][len(REF_PREFIX) :], {})
    return schema if isinstance(schema, dict) else {}


def _members(schema: dict[str, Any], definitions: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """An object schema's properties (its allOf parts' too), resolved, and the schema of other names."""
    properties: dict[str, dict[str, Any]] = {}
    for part in schema.get("allOf", ()):
        properties.update(_members(_resolved(part, definitions), definitions)[0])
    for name, sub in (schema.get("properties") or {}).items():
        if sub or name not in properties:  # allOf closing adds empty placeholders; keep the real schema
            properties[name] = _resolved(sub, definitions)
    extra = schema.get("additionalProperties")
    return properties, _resolved(extra, definitions) if isinstance(extra, dict) else {}


def _quoted(text: str) -> str:
    return orjson.dumps(text).decode()


def _matrix_value(raw: str, name: str) -> str:
    """The value of ``;name=value`` (``;name`` alone: empty)."""
    if raw == f";{name}":
        return ""
    if not raw.startswith(f";{name}="):
        raise MalformedParameter(f"{_quoted(raw)} is not in matrix style: expected ;{name}=<value>")
    return raw[len(name) + 2 :]


def _assignments(parts: list[str], raw: str, style: str) -> list[tuple[str, str]]:
    """``name=value`` parts as pairs."""
    pairs = []
    for part in parts:
        key, equals, value = part.partition("=")
        if not equals:
            raise MalformedParameter(f"{_quoted(raw)} is not in {style} style (exploded object): {_quoted(part)} is not name=value")
        pairs.append((key, value))
    return pairs


def _text_parser(parameter: Parameter, shape: str, schema: dict[str, Any], definitions: dict[str, Any]) -> Callable[[str], Any]:
    """How one text value of the parameter (a path segment, a query value, a header, a cookie) becomes JSON data.

    OpenAPI 3's serialization table: matrix (``;id=5``), label (``.5``), simple,
    form, spaceDelimited and pipeDelimited, for primitives, arrays and objects,
    exploded or not. A Swagger 2.0 array (no style) is split by its collectionFormat.
    """
    name = parameter.name
    style = parameter.style or "simple"
    explode = parameter.explode
    if shape == "primitive":
        coerce = _scalar_coercer(schema)
        if style == "matrix":
            return lambda raw: coerce(_matrix_value(raw, name))
        if style == "label":

            def label_primitive(raw: str) -> Any:
                if not raw.startswith("."):
                    raise MalformedParameter(f"{_quoted(raw)} is not in label style: expected .<value>")
                return coerce(raw[1:])

            return label_primitive
        return coerce

    def body_of(raw: str) -> tuple[str, str]:
        """The text after the style's prefix, and what separates its parts."""
        if style == "matrix":
            if explode:
                if raw and not raw.startswith(";"):
                    raise MalformedParameter(f"{_quoted(raw)} is not in matrix style: expected ;<name>=<value>...")
                return raw[1:], ";"
            return _matrix_value(raw, name), ","
        if style == "label":
            if not raw.startswith("."):
                raise MalformedParameter(f"{_quoted(raw)} is not in label style: expected a leading '.'")
            return raw[1:], "." if explode else ","
        if parameter.style is None:
            return raw, SEPARATORS.get(parameter.collection_format or "csv", ",")
        return raw, STYLE_SEPARATORS.get(style, ",")

    if shape == "array":
        item = _scalar_coercer(_resolved(schema.get("items", {}), definitions))
        if style == "matrix" and explode:

            def matrix_items(raw: str) -> Any:
                text, _ = body_of(raw)
                return [item(_matrix_value(";" + part, name)) for part in text.split(";")] if text else []

            return matrix_items

        def items(raw: str) -> Any:
            text, separator = body_of(raw)
            return [item(value) for value in text.split(separator)] if text != "" else []

        return items

    properties, extra = _members(schema, definitions)
    coercers = {prop: _scalar_coercer(sub) for prop, sub in properties.items()}
    other = _scalar_coercer(extra)

    def members(raw: str) -> Any:
        text, separator = body_of(raw)
        if text == "":
            return {}
        parts = text.split(separator)
        if explode:  # name=value, name=value
            pairs = _assignments(parts, raw, style)
        else:  # name,value,name,value
            if len(parts) % 2:
                raise MalformedParameter(f"{_quoted(raw)} is not in {style} style: an object is written as name{separator}value pairs")
            pairs = list(zip(parts[::2], parts[1::2], strict=True))
        return {key: coercers.get(key, other)(value) for key, value in pairs}

    return members


class ParameterReader:
    """Reads one non-body parameter from the request, as JSON data ready for validation.

    ``parse`` turns one text (a path segment...) into the value; ``read`` finds the
    parameter in a MultiDict-like source (query, headers, cookies, form) and parses
    it, or answers ``_MISSING``. Both are chosen once, at start-up, for the
    parameter's location, style and type.
    """

    __slots__ = ("coerce", "convert", "default", "has_default", "is_file", "location", "name", "parse", "python_name", "read")

    def __init__(self, parameter: Parameter, factory: ModelFactory) -> None:
        self.name = parameter.name
        self.location = parameter.location
        self.python_name = parameter.python_name
        self.default = parameter.default
        self.has_default = parameter.has_default
        self.is_file = parameter.is_file
        self.convert = factory.converter(parameter.schema)
        definitions = factory.api.definitions
        schema = _resolved(parameter.schema, definitions)
        shape = schema_shape(schema)
        self.coerce = _scalar_coercer(_resolved(schema.get("items", {}), definitions) if shape == "array" else schema)
        self.parse = _text_parser(parameter, shape, schema, definitions)
        self.read: Callable[[Any], Any] = self._read_one
        exploded_form = parameter.style == "form" and parameter.explode
        if shape == "array" and (parameter.collection_format == "multi" or exploded_form):
            self.read = self._read_repeated  # ?id=3&id=4
        elif shape == "object" and (exploded_form or parameter.style == "deepObject"):
            self.read = self._object_reader(parameter.style or "", schema, definitions)

    def _read_one(self, source: Any) -> Any:
        raw = source.get(self.name)
        return _MISSING if raw is None else self.parse(raw)

    def _read_repeated(self, source: Any) -> Any:
        values = source.getlist(self.name)
        return [self.coerce(value) for value in values] if values else _MISSING

    def _object_reader(self, style: str, schema: dict[str, Any], definitions: dict[str, Any]) -> Callable[[Any], Any]:
        """An object read from several names: its properties' own (form, exploded), or ``name[prop]`` (deepObject)."""
        properties, extra = _members(schema, definitions)
        readers: dict[str, tuple[Callable[[str], Any], bool]] = {}  # property -> (coercer, repeated)
        for prop, sub in properties.items():
            repeated = schema_shape(sub) == "array"
            readers[prop] = (_scalar_coercer(_resolved(sub.get("items", {}), definitions) if repeated else sub), repeated)
        other = (_scalar_coercer(extra), schema_shape(extra) == "array")

        def value_of(source: Any, key: str, prop: str) -> Any:
            coerce, repeated = readers.get(prop, other)
            return [coerce(value) for value in source.getlist(key)] if repeated else coerce(source.get(key))

        if style == "deepObject":
            prefix = self.name + "["

            def read_deep(source: Any) -> Any:
                found = {}
                for key in source.keys():
                    if key.startswith(prefix) and key.endswith("]"):
                        prop = key[len(prefix) : -1]
                        if "[" in prop or "]" in prop:
                            raise MalformedParameter(f"{_quoted(key)}: a deepObject parameter has one level of names ({self.name}[name]=value)")
                        found[prop] = value_of(source, key, prop)
                return found if found else _MISSING

            return read_deep

        def read_exploded(source: Any) -> Any:
            found = {prop: value_of(source, prop, prop) for prop in readers if prop in source}
            return found if found else _MISSING

        return read_exploded


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def request_schema(operation: Operation) -> dict[str, Any]:
    """One schema for a whole request: ``{"path": {...}, "query": {...}, "header": {...}, "cookie": {...}, "formData": {...}, "body": ...}``.

    Validating the request as one document reports every problem at once, each at
    a JSON pointer that says where it is (``/query/limit``, ``/body/owner/name``).
    """
    properties: dict[str, Any] = {}
    required: list[str] = []
    for location in LOCATIONS:
        group = [p for p in operation.parameters if p.location == location]
        if not group:
            continue
        section: dict[str, Any] = {"type": "object", "properties": {p.name: p.schema for p in group}}
        names = [p.name for p in group if p.required]
        if names:
            section["required"] = names
        properties[location] = section
        required.append(location)
    body = next((p for p in operation.parameters if p.location == "body"), None)
    if body is not None:
        properties["body"] = body.schema
        if body.required:
            required.append("body")
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


class Endpoint:
    """The Flask view of one operation."""

    def __init__(
        self,
        operation: Operation,
        handler: Callable[..., Any],
        factory: ModelFactory,
        definitions: dict[str, Any],
        error_response: Callable[[BaseException, Operation | None], Response],
    ) -> None:
        self.operation = operation
        self.handler = handler
        self.error_response = error_response
        self.__name__ = operation.name
        parameters = operation.parameters
        self.path_readers = [ParameterReader(p, factory) for p in parameters if p.location == "path"]
        self.query_readers = [ParameterReader(p, factory) for p in parameters if p.location == "query"]
        self.header_readers = [ParameterReader(p, factory) for p in parameters if p.location == "header"]
        self.cookie_readers = [ParameterReader(p, factory) for p in parameters if p.location == "cookie"]
        self.form_readers = [ParameterReader(p, factory) for p in parameters if p.location == "formData"]
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
        self.path_names = {p.python_name: p.name for p in parameters if p.location == "path"}
        groups = (("path", self.path_readers), ("query", self.query_readers), ("header", self.header_readers), ("cookie", self.cookie_readers), ("formData", self.form_readers))
        self.reader_groups = [(location, readers) for location, readers in groups if readers]

        self.request_checker = Checker(request_schema(operation), definitions)
        self.check_request = self.request_checker.is_valid

        # Response checkers by status; the status a model class is returned with by default.
        self.response_checkers: dict[int | str, Checker | None] = {}
        self.model_status: dict[type, int] = factory.model_statuses(operation.responses)
        self.default_status = next((s for s in sorted(k for k in operation.responses if isinstance(k, int)) if 200 <= s < 300), 200)
        for status, response in operation.responses.items():
            self.response_checkers[status] = Checker(response.schema, definitions) if response.schema is not None else None

    # -- the request path -------------------------------------------------------

    def __call__(self, **path_args: str) -> Any:
        try:
            values: dict[str, Any] = {}
            if self.path_readers:
                values["path"] = {reader.name: reader.parse(path_args[reader.python_name]) for reader in self.path_readers}
            if self.query_readers:
                values["query"] = self._read(self.query_readers, request.args)
            if self.header_readers:
                values["header"] = self._read(self.header_readers, request.headers)
            if self.cookie_readers:
                values["cookie"] = self._read(self.cookie_readers, request.cookies)
            if self.form_readers:
                values["formData"] = self._read_form()
            if self.body is not None:
                body = self._read_body()
                if body is not _MISSING:
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
            value = reader.read(source)
            if value is _MISSING:
                if reader.has_default:
                    found[reader.name] = copy_wire(reader.default)  # a handler may change a list default
                continue
            found[reader.name] = value
        return found

    def _malformed(self, path_args: dict[str, str]) -> ValidationError:
        """Every problem of a request with a parameter its style cannot read: the others are read and validated too."""
        problems: list[dict[str, str]] = []
        values: dict[str, Any] = {}
        sources = {"query": request.args, "header": request.headers, "cookie": request.cookies}
        for location, readers in (("path", self.path_readers), ("query", self.query_readers), ("header", self.header_readers), ("cookie", self.cookie_readers)):
            if not readers:
                continue
            group = values[location] = {}
            for reader in readers:
                try:
                    value = reader.parse(path_args[reader.python_name]) if location == "path" else reader.read(sources[location])
                except MalformedParameter as exc:
                    problems.append({"field": f"/{location}/{escape(reader.name)}", "message": str(exc)})
                    continue
                if value is _MISSING:
                    if reader.has_default:
                        group[reader.name] = copy_wire(reader.default)
                    continue
                group[reader.name] = value
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
                if body is not _MISSING:
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
            value = reader.read(form)
            if value is _MISSING:
                if reader.has_default:
                    found[reader.name] = copy_wire(reader.default)  # a handler may change a list default
                continue
            found[reader.name] = value
        return found

    def _read_body(self) -> Any:
        data = request.get_data(cache=False)
        if not data:
            return _MISSING
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
        for problem in problems:
            if problem["field"] == "/body" and problem["message"] == "is required":
                problem["message"] = "a request body is required"
        return problems

    def _arguments(self, values: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        kwargs: dict[str, Any] = {}
        for location, readers in self.reader_groups:
            group = values[location]
            for reader in readers:
                value = group.get(reader.name, _MISSING)
                if value is _MISSING:
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
        if status in checkers:
            checker = checkers[status]
        elif "default" in checkers:
            checker = checkers["default"]
        else:
            raise BadResponse(f"{self.operation.name} returned status {status}, which its spec does not declare")
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

