"""How a parameter outside the body is written as text and read back: OpenAPI 3's styles, Swagger 2.0's collectionFormat.

One :class:`Layout` per parameter, decided at start-up, says where its text goes
and how it is delimited; the server (macaron.endpoint) reads with :func:`text_parser`
and the client (macaron.client) writes with :class:`TextWriter`, both from it, so
what one writes the other reads.

Percent-encoding: path, query and cookie values are percent-encoded piece by piece,
their delimiters left as they are (RFC 6570), so the item ``a,b`` of a
comma-separated array is sent as ``a%2Cb`` and read by splitting the text on ``,``
before decoding it. Only delimiters that a URL keeps as they are, and that an
encoded one cannot be taken for, work that way: ``,``, ``;`` and ``=``. A space,
``|`` or tab must itself be encoded, and ``%2E`` is the same as ``.`` to URLs, so
an item cannot contain the delimiter of a style that uses one of these. Headers are
never percent-encoded (OpenAPI 3.1.2, appendix D): an item there cannot contain
its delimiter at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from macaron.models import _identity
from macaron.spec import Parameter, schema_shape
from macaron.validation import REF_PREFIX

SEPARATORS = {"csv": ",", "ssv": " ", "tsv": "\t", "pipes": "|"}  # Swagger 2.0 collectionFormat
# OpenAPI 3 styles that separate values (items, or an object's names and values) with one character.
STYLE_SEPARATORS = {"simple": ",", "form": ",", "spaceDelimited": " ", "pipeDelimited": "|"}
# The styles each location takes, its default first (OpenAPI 3's "style values" table).
STYLES = {"path": ("simple", "label", "matrix"), "query": ("form", "spaceDelimited", "pipeDelimited", "deepObject"), "header": ("simple",), "cookie": ("form",)}
# Delimiters sent as they are in a URL or cookie, which an encoded one in a value (%2C) cannot be mistaken for.
LITERAL_DELIMITERS = frozenset(",;=")
# Percent-encoded locations (OpenAPI 3.1.2 appendix D: headers never are; cookies in form style are).
ENCODED_LOCATIONS = frozenset({"path", "query", "cookie"})
# allowReserved: RFC 3986's reserved characters a query value may carry as they are; not & = + (form encoding's), # [ ].
RESERVED_KEPT = ":/?@!$'()*,;"

ONE = "one"  # one text under the parameter's name (a path segment, a header, a query parameter, a cookie)
REPEATED = "repeated"  # an array as the name repeated, one item each (form exploded, multi)
PROPERTIES = "properties"  # an object as one parameter per property, named after it (form exploded)
DEEP = "deep"  # an object as name[property]=value (deepObject)

_INT_LOW, _INT_HIGH = -(2**63), 2**64 - 1
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


class MalformedParameter(Exception):
    """Parameter text its style cannot read (``5`` where matrix style writes ``;id=5``): a 400 naming the parameter."""


@dataclass(frozen=True)
class Layout:
    """How one parameter's value is laid out as text, from its location, style, explode and schema shape."""

    name: str
    location: str
    shape: str  # "primitive", "array" or "object" (macaron.spec.schema_shape)
    style: str  # the OpenAPI 3 style; a Swagger 2.0 parameter's is its collectionFormat (csv...) or "simple"
    explode: bool
    spread: str  # ONE, REPEATED, PROPERTIES or DEEP
    lead: str  # before the value: "" , "." (label) or ";" (matrix)
    named: bool  # matrix: the value follows ";<name>=" (an exploded object names its properties instead)
    named_items: bool  # matrix, exploded array: every item is ";<name>=<item>"
    separator: str  # between items, between an exploded object's members, between an object's names and values
    pair: str  # between a name and its value in an exploded object ("="); the separator otherwise
    encoded: bool  # the text is percent-encoded (path, query, cookie)
    split_raw: bool  # the encoded text is split before it is decoded: its delimiters cannot be mistaken for encoded ones

    @property
    def delimiters(self) -> str:
        return "".join(dict.fromkeys(self.separator + self.pair)) if self.shape != "primitive" and self.spread == ONE else ""

    def describe(self) -> str:
        if self.style in SEPARATORS or self.style == "multi":
            return f"collectionFormat {self.style}"
        return f"style {self.style}{', exploded' if self.explode else ''}"


def layout_of(parameter: Parameter, definitions: dict[str, Any]) -> Layout:
    """The layout of a parameter outside the body; ValueError when no style macaron knows writes it."""
    schema = resolved(parameter.schema, definitions)
    shape = schema_shape(schema)
    location = parameter.location
    explode = parameter.explode
    if parameter.style is None:  # Swagger 2.0 (and OpenAPI 3 form bodies): arrays by collectionFormat, the rest as is
        fmt = parameter.collection_format or "csv"
        if shape == "array" and fmt == "multi":
            return _layout(parameter.name, location, shape, "multi", False, REPEATED, separator=",")
        if shape == "array" and fmt not in SEPARATORS:
            raise ValueError(f"collectionFormat {fmt} is not one of {', '.join([*SEPARATORS, 'multi'])}")
        return _layout(parameter.name, location, shape, fmt if shape == "array" else "simple", False, ONE, separator=SEPARATORS.get(fmt, ","))
    style = parameter.style
    if location in STYLES and style not in STYLES[location]:
        raise ValueError(f"style {style} is not one a {location} parameter takes ({', '.join(STYLES[location])})")
    if style == "deepObject":
        if shape != "object":
            raise ValueError("deepObject is for objects")
        return _layout(parameter.name, location, shape, style, True, DEEP, separator="&")
    if style == "form" and explode and shape == "array":
        return _layout(parameter.name, location, shape, style, True, REPEATED, separator=",")
    if style == "form" and explode and shape == "object":
        return _layout(parameter.name, location, shape, style, True, PROPERTIES, separator="&")
    if style == "matrix":
        if shape == "object" and explode:
            return _layout(parameter.name, location, shape, style, True, ONE, lead=";", separator=";", pair="=")
        return _layout(parameter.name, location, shape, style, explode, ONE, lead=";", named=True, named_items=shape == "array" and explode, separator=";" if explode else ",")
    if style == "label":
        separator = "." if explode else ","
        return _layout(parameter.name, location, shape, style, explode, ONE, lead=".", separator=separator, pair="=" if explode and shape == "object" else separator)
    if style not in STYLE_SEPARATORS:
        raise ValueError(f"style {style} is not an OpenAPI 3 style")
    separator = STYLE_SEPARATORS[style]
    return _layout(parameter.name, location, shape, style, explode, ONE, separator=separator, pair="=" if explode and shape == "object" else separator)


def _layout(
    name: str, location: str, shape: str, style: str, explode: bool, spread: str, *, lead: str = "", named: bool = False, named_items: bool = False, separator: str, pair: str | None = None
) -> Layout:
    pair = separator if pair is None else pair
    encoded = location in ENCODED_LOCATIONS
    split_raw = encoded and spread == ONE and shape != "primitive" and set(separator + pair) <= LITERAL_DELIMITERS
    return Layout(name, location, shape, style, explode, spread, lead, named, named_items, separator, pair, encoded, split_raw)


# -- schemas -------------------------------------------------------------------------


def resolved(schema: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    """A schema with its top ``$ref`` followed: how text is read depends on the type it names."""
    seen: set[str] = set()
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and schema["$ref"] not in seen:
        seen.add(schema["$ref"])
        schema = definitions.get(schema["$ref"][len(REF_PREFIX) :], {})
    return schema if isinstance(schema, dict) else {}


def members(schema: dict[str, Any], definitions: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """An object schema's properties (its allOf parts' too), resolved, and the schema of other names."""
    properties: dict[str, dict[str, Any]] = {}
    for part in schema.get("allOf", ()):
        properties.update(members(resolved(part, definitions), definitions)[0])
    for name, sub in (schema.get("properties") or {}).items():
        if sub or name not in properties:  # allOf closing adds empty placeholders; keep the real schema
            properties[name] = resolved(sub, definitions)
    extra = schema.get("additionalProperties")
    return properties, resolved(extra, definitions) if isinstance(extra, dict) else {}


# -- reading ---------------------------------------------------------------------------


def scalar_coercer(schema: dict[str, Any]) -> Callable[[str], Any]:
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


def quoted(text: str) -> str:
    return orjson.dumps(text).decode()


def _matrix_value(raw: str, name: str, decode: Callable[[str], str] | None) -> str:
    """The value of ``;name=value`` (``;name`` alone: empty), still encoded when ``decode`` is given."""
    if raw.startswith(";"):
        key, _, value = raw[1:].partition("=")
        if (key if decode is None else decode(key)) == name:
            return value
    shown = raw if decode is None else decode(raw)
    raise MalformedParameter(f"{quoted(shown)} is not in matrix style: expected ;{name}=<value>")


def text_parser(layout: Layout, schema: dict[str, Any], definitions: dict[str, Any], decode: Callable[[str], str] | None = None) -> Callable[[str], Any]:
    """How one text of a parameter (a path segment, a query value, a header, a cookie) becomes JSON data.

    Without ``decode`` the text is already decoded (werkzeug decodes paths and
    queries). With it, the text is as sent: split on the layout's delimiters first,
    each piece decoded after, so an encoded delimiter in a value stays in the value.
    """
    name = layout.name
    style = layout.style
    explode = layout.explode
    piece: Callable[[str], str] = _identity if decode is None else decode

    def shown(raw: str) -> str:
        return quoted(raw if decode is None else decode(raw))

    if layout.shape == "primitive":
        coerce = scalar_coercer(schema)
        if layout.named:
            return lambda raw: coerce(piece(_matrix_value(raw, name, decode)))
        if layout.lead == ".":

            def label_primitive(raw: str) -> Any:
                if not raw.startswith("."):
                    raise MalformedParameter(f"{shown(raw)} is not in label style: expected .<value>")
                return coerce(piece(raw[1:]))

            return label_primitive
        return coerce if decode is None else lambda raw: coerce(decode(raw))

    separator = layout.separator

    def body_of(raw: str) -> str:
        """The text after the style's prefix."""
        if layout.named and not layout.named_items:
            return _matrix_value(raw, name, decode)
        if layout.lead == ";":
            if raw and not raw.startswith(";"):
                raise MalformedParameter(f"{shown(raw)} is not in matrix style: expected ;<name>=<value>...")
            return raw[1:]
        if layout.lead == ".":
            if not raw.startswith("."):
                raise MalformedParameter(f"{shown(raw)} is not in label style: expected a leading '.'")
            return raw[1:]
        return raw

    if layout.shape == "array":
        coerce_item = scalar_coercer(resolved(schema.get("items", {}), definitions))
        item = coerce_item if decode is None else (lambda text: coerce_item(decode(text)))
        if layout.named_items:

            def matrix_items(raw: str) -> Any:
                text = body_of(raw)
                return [item(_matrix_value(";" + part, name, decode)) for part in text.split(";")] if text else []

            return matrix_items

        def items(raw: str) -> Any:
            text = body_of(raw)
            return [item(value) for value in text.split(separator)] if text != "" else []

        return items

    properties, extra = members(schema, definitions)
    coercers = {prop: scalar_coercer(sub) for prop, sub in properties.items()}
    other = scalar_coercer(extra)

    def object_members(raw: str) -> Any:
        text = body_of(raw)
        if text == "":
            return {}
        parts = text.split(separator)
        if explode:  # name=value, name=value
            pairs = []
            for part in parts:
                key, equals, value = part.partition("=")
                if not equals:
                    raise MalformedParameter(f"{shown(raw)} is not in {style} style (exploded object): {shown(part)} is not name=value")
                pairs.append((piece(key), piece(value)))
        else:  # name,value,name,value
            if len(parts) % 2:
                raise MalformedParameter(f"{shown(raw)} is not in {style} style: an object is written as name{separator}value pairs")
            pairs = [(piece(key), piece(value)) for key, value in zip(parts[::2], parts[1::2], strict=True)]
        return {key: coercers.get(key, other)(value) for key, value in pairs}

    return object_members


def raw_text_parser(layout: Layout, schema: dict[str, Any], definitions: dict[str, Any], decode: Callable[[str], str]) -> Callable[[str], Any]:
    """How one text as sent, still percent-encoded, becomes JSON data, for a layout whose delimiters stay as they are.

    A text where a delimiter of the layout appears as it is was written the RFC 6570
    way: delimiters as they are, the same characters in values encoded (``a%2Cb,c`` is
    ``["a,b", "c"]``): it is split first, each piece decoded after. A text with none
    was either one item, or encoded whole, delimiters included, as ``requests`` and
    browsers' URLSearchParams do (``en%2Cfr``): it is decoded first, then split, so
    such callers keep working. (One item holding the delimiter cannot be told from the
    latter: macaron's client refuses to send it.)
    """
    split_first = text_parser(layout, schema, definitions, decode)
    decoded_first = text_parser(layout, schema, definitions)
    delimiters = set(layout.separator + layout.pair)
    skip_name = layout.named and not layout.named_items  # ;name=<body>

    def parse(raw: str) -> Any:
        body = raw.partition("=")[2] if skip_name else raw[len(layout.lead) :]
        if any(char in body for char in delimiters):
            return split_first(raw)
        return decoded_first(decode(raw))

    return parse


# -- writing ---------------------------------------------------------------------------


def scalar_text(value: Any) -> str:
    """A JSON scalar as the text a parameter carries: booleans as ``true``/``false``, as the server reads them."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


class Unsendable(Exception):
    """A value the parameter's layout cannot carry so that the server reads it back unchanged."""


class TextWriter:
    """Writes a parameter's JSON value as the (name, text) pairs its layout puts in the request, encoded as sent.

    Names and texts of the query and cookies come out percent-encoded, a path
    segment too; headers and form fields as they are (a form body is encoded by
    whoever sends it). A value the layout cannot carry raises :class:`Unsendable`.
    """

    def __init__(self, layout: Layout, allow_reserved: bool = False) -> None:
        self.layout = layout
        delimiters = layout.delimiters
        if layout.encoded:
            safe = "".join(c for c in RESERVED_KEPT if c not in delimiters) if allow_reserved and layout.location == "query" else ""
            self.encode: Callable[[str], str] = lambda text: quote(text, safe=safe)
            # A delimiter a URL cannot carry as it is (space, |, tab) is itself sent encoded.
            self.separator = layout.separator if layout.separator in LITERAL_DELIMITERS or layout.separator == "." else quote(layout.separator, safe="")
        else:
            self.encode = _identity
            self.separator = layout.separator
        # Names are encoded in URLs; a cookie's name is a token (the client checks it), sent as it is.
        self.encode_name: Callable[[str], str] = (lambda name: quote(name, safe="")) if layout.location in ("path", "query") else _identity
        self.wire_name = self.encode_name(layout.name)
        # Delimiters a value cannot contain: those an encoded one would be taken for, or that have no escape.
        unsafe = "".join(c for c in delimiters if not (layout.split_raw and c in LITERAL_DELIMITERS))
        self.unsafe_keys = unsafe
        # The value of an exploded object's member is what follows its first "=": it may hold more.
        self.unsafe_values = unsafe.replace(layout.pair, "") if layout.explode and layout.shape == "object" and layout.pair != layout.separator else unsafe

    def write(self, value: Any) -> list[tuple[str, str]]:
        layout = self.layout
        spread = layout.spread
        if spread == REPEATED:
            return [(self.wire_name, self.encode(scalar_text(item))) for item in _items(value)]
        if spread in (PROPERTIES, DEEP):
            pairs: list[tuple[str, str]] = []
            for prop, item in _properties(value):
                key = prop if spread == PROPERTIES else f"{layout.name}[{prop}]"
                wire_key = self.encode_name(key)
                pairs.extend((wire_key, self.encode(scalar_text(one))) for one in (item if isinstance(item, list) else [item]))
            return pairs
        text = self.text(value)
        if layout.location == "path":
            _check_segment(text)
        elif layout.location == "header":
            _check_header(text)
        return [(self.wire_name, text)]

    def text(self, value: Any) -> str:
        """The one text of a parameter spread ONE."""
        layout = self.layout
        if layout.shape == "primitive":
            if isinstance(value, (list, dict)):
                raise Unsendable(f"a {type(value).__name__} where the server reads one value")
            body = self.encode(scalar_text(value))
        elif layout.shape == "array":
            items = _items(value)
            if len(items) == 1 and layout.split_raw and layout.separator in scalar_text(items[0]):
                raise Unsendable(
                    f"a single item holding {quoted(layout.separator)} reads as several: a text without the delimiter as it is counts as encoded whole (see macaron.styles)"
                )
            texts = [self._piece(scalar_text(item), self.unsafe_values) for item in items]
            if layout.named_items:
                return "".join(f";{self.wire_name}={text}" for text in texts) or ";"
            body = self.separator.join(texts)
        else:
            pair = layout.pair if layout.explode else self.separator
            body = self.separator.join(
                f"{self._piece(str(prop), self.unsafe_keys)}{pair}{self._piece(scalar_text(item), self.unsafe_values)}" for prop, item in _properties(value)
            )
        if layout.named:
            return f";{self.wire_name}={body}"
        return layout.lead + body

    def _piece(self, text: str, unsafe: str) -> str:
        for char in unsafe:
            if char in text:
                raise Unsendable(f"{quoted(text)} contains {quoted(char)}, which separates the values of {self.layout.describe()}{self._why(char)}")
        return self.encode(text)

    def _why(self, char: str) -> str:
        if not self.layout.encoded:
            return " (a header or form field has no escape for it)"
        if char == ".":
            return " (URLs treat %2E as '.')"
        return f" (sent encoded as {quote(char, safe='')}, as the same character in a value would be)"


def _items(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise Unsendable(f"a {type(value).__name__} where the server reads an array")
    return value


def _properties(value: Any) -> list[tuple[str, Any]]:
    if not isinstance(value, dict):
        raise Unsendable(f"a {type(value).__name__} where the server reads an object")
    return list(value.items())


def _check_segment(text: str) -> None:
    if text == "":
        raise Unsendable("an empty path segment never reaches the operation")
    if text in (".", ".."):
        raise Unsendable(f"the path segment {quoted(text)} is removed from URLs (a dot segment)")
    if "%2F" in text:
        raise Unsendable('contains "/", which WSGI servers decode from %2F before routing: the path would not reach the operation')


def _check_header(text: str) -> None:
    for char in text:
        if not (" " <= char <= "~" or char == "\t"):
            raise Unsendable(f"{quoted(text)} contains {quoted(char)}, which a header cannot carry (header values are ASCII text, never percent-encoded)")
    if text != text.strip(" \t"):
        raise Unsendable(f"{quoted(text)} starts or ends with white space, which HTTP removes from header values")
