"""Reading and checking the parts of a request, shared by the server (:mod:`macaron.endpoint`) and the client (:mod:`macaron.client`).

A parameter's reader (from the query, headers, cookies, form or path), the
schema of a whole request, and the checks of a body sent as text or bytes: what
depends only on the spec, decided once at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, unquote_plus

from werkzeug.datastructures import MultiDict

from macaron.model_factory import ModelFactory
from macaron.models import _identity, copy_wire
from macaron.spec import Operation, Parameter, RawBody, schema_shape
from macaron.styles import (
    DEEP,
    PROPERTIES,
    REPEATED,
    MalformedParameter,
    layout_of,
    members,
    quoted,
    raw_text_parser,
    resolved,
    scalar_coercer,
    text_parser,
)
from macaron.validation import Checker
from macaron.variants import request_variant

JSON_MIME = "application/json"
LOCATIONS = ("path", "query", "header", "cookie", "formData")  # where non-body parameters come from, in request_schema's order
# How the text of a location is decoded, when macaron reads it as sent (werkzeug has decoded paths and queries already,
# but cannot leave a delimiter written %2C in a value; cookies it never decodes).
DECODERS: dict[str, Callable[[str], str]] = {"path": unquote, "query": unquote_plus, "cookie": unquote}


class ParameterReader:
    """Reads one non-body parameter from the request, as JSON data ready for validation.

    ``parse`` turns one text (a path segment...) into the value; ``read`` finds the
    parameter in a MultiDict-like source (query, headers, cookies, form) and parses
    it, or answers ``MISSING``. ``parse_raw`` and ``read_raw`` do the same from
    text as sent, still percent-encoded, for a layout whose delimiters must be found
    before decoding (``split_raw``). All are chosen once, at start-up, for the
    parameter's location, style and type (see macaron.styles).
    """

    __slots__ = (
        "coerce", "convert", "default", "has_default", "is_file", "layout", "location", "name", "parse", "parse_raw", "python_name", "read", "segment", "split_raw",
    )  # fmt: skip

    def __init__(self, parameter: Parameter, factory: ModelFactory, path: str = "") -> None:
        self.name = parameter.name
        self.location = parameter.location
        self.python_name = parameter.python_name
        self.default = parameter.default
        self.has_default = parameter.has_default
        self.is_file = parameter.is_file
        self.convert = factory.converter(parameter.schema)
        definitions = factory.api.definitions
        schema = resolved(parameter.schema, definitions)
        self.layout = layout = layout_of(parameter, definitions)
        self.split_raw = layout.split_raw
        decode = DECODERS.get(parameter.location)
        items = resolved(schema.get("items", {}), definitions) if layout.shape == "array" else schema
        coerce = scalar_coercer(items)
        parse = text_parser(layout, schema, definitions)
        if decode is None:
            parse_raw = parse
        elif layout.split_raw:
            parse_raw = raw_text_parser(layout, schema, definitions, decode)
        else:
            parse_raw = decoded(parse, decode)
        if parameter.location == "cookie":  # werkzeug hands cookies over as sent: macaron decodes them
            parse, coerce = parse_raw, decoded(coerce, unquote)
        self.parse = parse
        self.parse_raw = parse_raw
        self.coerce = coerce
        # Where the path parameter's segment is, counted from the end (the raw URI may start with a mount point).
        segments = path.split("/")
        self.segment = segments.index("{" + self.name + "}") - len(segments) if "{" + self.name + "}" in segments else None
        self.read: Callable[[Any], Any] = self._read_one
        if layout.spread == REPEATED:
            self.read = self._read_repeated  # ?id=3&id=4
        elif layout.spread in (PROPERTIES, DEEP):
            self.read = self._object_reader(layout.spread, schema, definitions)

    def put(self, found: dict[str, Any], value: Any) -> None:
        """``value`` read into ``found``; a missing value becomes a copy of the default, if any (a handler may change a list default)."""
        if value is MISSING:
            if self.has_default:
                found[self.name] = copy_wire(self.default)
        else:
            found[self.name] = value

    def _read_one(self, source: Any) -> Any:
        raw = source.get(self.name)
        return MISSING if raw is None else self.parse(raw)

    def read_raw(self, source: Any) -> Any:
        """The parameter from a source of texts as sent (see query_as_sent)."""
        raw = source.get(self.name)
        return MISSING if raw is None else self.parse_raw(raw)

    def _read_repeated(self, source: Any) -> Any:
        values = source.getlist(self.name)
        return [self.coerce(value) for value in values] if values else MISSING

    def _object_reader(self, spread: str, schema: dict[str, Any], definitions: dict[str, Any]) -> Callable[[Any], Any]:
        """An object read from several names: its properties' own (form, exploded), or ``name[prop]`` (deepObject)."""
        properties, extra = members(schema, definitions)
        decode = unquote if self.location == "cookie" else None
        readers: dict[str, tuple[Callable[[str], Any], bool]] = {}  # property -> (coercer, repeated)
        for prop, sub in properties.items():
            repeated = schema_shape(sub) == "array"
            readers[prop] = (decoded(scalar_coercer(resolved(sub.get("items", {}), definitions) if repeated else sub), decode), repeated)
        other = (decoded(scalar_coercer(extra), decode), schema_shape(extra) == "array")

        def value_of(source: Any, key: str, prop: str) -> Any:
            coerce, repeated = readers.get(prop, other)
            return [coerce(value) for value in source.getlist(key)] if repeated else coerce(source.get(key))

        if spread == DEEP:
            prefix = self.name + "["

            def read_deep(source: Any) -> Any:
                found = {}
                for key in source.keys():
                    if key.startswith(prefix) and key.endswith("]"):
                        prop = key[len(prefix) : -1]
                        if "[" in prop or "]" in prop:
                            raise MalformedParameter(f"{quoted(key)}: a deepObject parameter has one level of names ({self.name}[name]=value)")
                        found[prop] = value_of(source, key, prop)
                return found if found else MISSING

            return read_deep

        def read_exploded(source: Any) -> Any:
            found = {prop: value_of(source, prop, prop) for prop in readers if prop in source}
            return found if found else MISSING

        return read_exploded


def decoded(coerce: Callable[[str], Any], decode: Callable[[str], str] | None) -> Callable[[str], Any]:
    if decode is None:
        return coerce
    return decode if coerce is _identity else lambda raw: coerce(decode(raw))


def query_as_sent(query: str) -> MultiDict[str, str]:
    """The query's values as sent, still percent-encoded, by decoded name."""
    found: MultiDict[str, str] = MultiDict()
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            found.add(unquote_plus(key), value)
    return found


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()  # what a reader answers for a parameter the request does not have


def parameter_readers(operation: Operation, factory: ModelFactory) -> list[ParameterReader]:
    """A reader for each parameter outside the body; a layout macaron cannot read stops start-up, naming the parameter."""
    readers = []
    for parameter in operation.parameters:
        if parameter.location == "body":
            continue
        try:
            readers.append(ParameterReader(parameter, factory, operation.path))
        except ValueError as exc:
            raise operation.error(f"{parameter.location} parameter '{parameter.name}' cannot be read: {exc}") from None
    return readers


def request_schema(operation: Operation, definitions: dict[str, Any] | None = None, accept_read_only: bool = False) -> dict[str, Any]:
    """One schema for a whole request: ``{"path": {...}, "query": {...}, "header": {...}, "cookie": {...}, "formData": {...}, "body": ...}``.

    Validating the request as one document reports every problem at once, each at
    a JSON pointer that says where it is (``/query/limit``, ``/body/owner/name``).
    With ``definitions``, it is the request variant (macaron.variants.request_variant):
    readOnly properties refused, or with ``accept_read_only`` accepted; never required.
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
        properties[location] = section if definitions is None else request_variant(section, definitions, accept_read_only)
        required.append(location)
    body = next((p for p in operation.parameters if p.location == "body"), None)
    if body is not None:
        properties["body"] = body.schema if definitions is None else request_variant(body.schema, definitions, accept_read_only)
        if body.required and not body.raw_bodies:  # a body that may be text or bytes: the endpoint checks its presence
            required.append("body")
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def media_matches(declared: str, sent: str) -> bool:
    """Whether a request's media type is one a spec declares: ``image/*`` takes ``image/png``, ``*/*`` anything."""
    if declared == sent or declared == "*/*":
        return True
    return declared.endswith("/*") and sent.startswith(declared[:-1])


def raw_value(raw: RawBody, checker: Checker | None, data: bytes, charset: str) -> tuple[Any, list[dict[str, str]]]:
    """A body read as text (text/*, in its charset) or bytes, and its problems against the media type's schema."""
    if not raw.text:
        problems = []
        longest, shortest = raw.schema.get("maxLength"), raw.schema.get("minLength")
        if isinstance(longest, int) and len(data) > longest:
            problems.append({"field": "/body", "message": f"is longer than {longest} bytes"})
        if isinstance(shortest, int) and len(data) < shortest:
            problems.append({"field": "/body", "message": f"is shorter than {shortest} bytes"})
        return data, problems
    try:
        text = data.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return None, [{"field": "/body", "message": f"is not valid {charset} text"}]
    return text, (checker.problems(text) if checker is not None else [])


def raw_body_checkers(raw_bodies: list[RawBody], definitions: dict[str, Any]) -> list[tuple[RawBody, Checker | None]]:
    """A text or bytes body's declared types, each with the checker of its text (None for bytes), the server's and the client's.

    Exact types first, then ``type/*``, then ``*/*``: the most precise declaration decides how a body is read.
    """
    ordered = sorted(raw_bodies, key=lambda raw: (raw.media_type == "*/*", raw.media_type.endswith("/*")))
    return [(raw, Checker(raw.schema, definitions, "/body") if raw.text else None) for raw in ordered]
