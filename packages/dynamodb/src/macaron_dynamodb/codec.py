"""A model's wire data to DynamoDB attribute values and back, exactly.

Writing needs no schema: wire data is JSON, and each JSON type has one DynamoDB
type (``null`` NULL, booleans BOOL, numbers N, strings S, arrays L, objects M).
Dates and date-times are already ISO strings in wire data, so they are stored as
strings and come back character for character.

Reading needs the schema only for numbers: DynamoDB keeps a number as decimal text
and normalises it (``2.0`` comes back as ``2``), so whether ``2`` is the integer
``2`` or the float ``2.0`` is the spec's to say. Properties typed ``number`` come
back as ``float``, ``integer`` as ``int``; a number with no type in the spec (a
free-form object) is an ``int`` when its text has no fraction or exponent. No
``Decimal`` ever reaches a model. Decoders are compiled once per definition, and
any part of a schema with no ``number`` in it is read by the generic decoder.

Where a schema with a discriminator is declared (the ``Pet:any`` dispatch of the
spec), the value may be any of its subtypes, each with numbers of its own: the
stored discriminator value picks the subtype's decoder, as it picks the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from macaron.spec import DISPATCH, POLYMORPHIC_SUFFIX

AttributeValue = dict[str, Any]
Decoder = Callable[[AttributeValue], Any]
REF_PREFIX = "#/definitions/"
# DynamoDB's numbers: 38 significant digits, magnitudes from 1e-130 to 9.99...e125.
MAX_DIGITS = 38
MIN_NUMBER = 1e-130
MAX_NUMBER = 9.9999999999999999999999999999999999999e125


class EncodeError(ValueError):
    """A value DynamoDB cannot store; ``path`` says where it is in the item."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def encode(value: Any, path: str = "") -> AttributeValue:
    """One wire value (JSON data) as a DynamoDB attribute value."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is int:
        text = str(value)
        if len(text) > MAX_DIGITS and len(text.lstrip("-").rstrip("0")) > MAX_DIGITS:
            raise EncodeError(path, f"{value} has more than {MAX_DIGITS} significant digits, DynamoDB's limit")
        return {"N": text}
    if kind is bool:
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if kind is float:
        magnitude = abs(value)
        if not MIN_NUMBER <= magnitude <= MAX_NUMBER and magnitude != 0.0:
            if not math.isfinite(value):
                raise EncodeError(path, f"{value} cannot be stored (DynamoDB numbers are finite)")
            raise EncodeError(path, f"{value} is out of DynamoDB's range (magnitudes from 1e-130 to 9.99e125)")
        return {"N": repr(value)}
    if isinstance(value, dict):
        return {"M": {key: encode(item, f"{path}/{key}") for key, item in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [encode(item, f"{path}/{index}") for index, item in enumerate(value)]}
    if isinstance(value, bool):  # a bool subclass, unlikely but not an int
        return {"BOOL": bool(value)}
    if isinstance(value, int):
        return {"N": str(int(value))}
    if isinstance(value, float):
        return encode(float(value), path)
    if isinstance(value, str):
        return {"S": str(value)}
    raise EncodeError(path, f"a {kind.__name__} is not JSON data (models hold wire form: strings, numbers, lists, objects)")


def encode_item(data: dict[str, Any]) -> dict[str, AttributeValue]:
    """A model's wire data as a DynamoDB item."""
    return {key: encode(value, "/" + key) for key, value in data.items()}


def _number(text: str) -> int | float:
    if "." in text or "e" in text or "E" in text:
        return float(text)
    return int(text)


def generic(value: AttributeValue) -> Any:
    """A DynamoDB attribute value as JSON data, with no schema to guide it."""
    for tag, item in value.items():
        if tag == "S":
            return item
        if tag == "N":
            return _number(item)
        if tag == "M":
            return {key: generic(sub) for key, sub in item.items()}
        if tag == "L":
            return [generic(sub) for sub in item]
        if tag == "BOOL":
            return item
        if tag == "NULL":
            return None
        if tag == "SS":
            return list(item)
        if tag == "NS":
            return [_number(text) for text in item]
        # B and BS (binary) are never written by macaron; keep what boto gives.
        return item
    raise ValueError("empty DynamoDB attribute value")


def _float(value: AttributeValue) -> Any:
    text = value.get("N")
    return float(text) if text is not None else generic(value)


def _integer(value: AttributeValue) -> Any:
    text = value.get("N")
    if text is None:
        return generic(value)
    try:
        return int(text)
    except ValueError:  # written by another tool as 2.0 or 2e0
        number = float(text)
        return int(number) if number.is_integer() else number


class DecoderFactory:
    """Compiles decoders for the schemas of one API; ``definitions`` resolves ``$ref``."""

    def __init__(self, definitions: dict[str, dict[str, Any]]) -> None:
        self.definitions = definitions
        self._by_ref: dict[str, Decoder | None] = {}
        self._resolving: set[str] = set()

    def item_decoder(self, schema: dict[str, Any], name: str | None = None) -> Callable[[dict[str, AttributeValue]], dict[str, Any]]:
        """Reads a whole item (a map of top-level attributes) as the wire data of ``schema``, the definition ``name``.

        When the definition has a discriminator, the item may be any of its subtypes:
        the stored value picks the subtype's decoder (an unknown one, the base's).
        """
        dispatch = self.dispatch_of(name) if name is not None else None
        plain = self._item_decoder(schema)
        if dispatch is None:
            return plain
        prop = dispatch["propertyName"]
        by_target = {target: self._item_decoder(self.definitions.get(target, {})) for target in set(dispatch["mapping"].values())}
        by_value = {value: by_target[target] for value, target in dispatch["mapping"].items()}

        def decode_subtype(item: dict[str, AttributeValue]) -> dict[str, Any]:
            tag = item.get(prop)
            return by_value.get(tag.get("S"), plain)(item) if tag is not None else plain(item)

        return decode_subtype

    def dispatch_of(self, name: str) -> dict[str, Any] | None:
        """How the definition ``name`` picks a subtype by its discriminator, when it has one (its ``Name:any`` companion)."""
        marker = self.definitions.get(name + POLYMORPHIC_SUFFIX, {}).get(DISPATCH)
        return marker if isinstance(marker, dict) else None

    def _item_decoder(self, schema: dict[str, Any]) -> Callable[[dict[str, AttributeValue]], dict[str, Any]]:
        properties = {name: self.decoder(sub) for name, sub in self.properties(schema).items()}
        special = {name: decoder for name, decoder in properties.items() if decoder is not None}
        if not special:
            return lambda item: {key: generic(value) for key, value in item.items()}

        def decode_item(item: dict[str, AttributeValue]) -> dict[str, Any]:
            get = special.get
            return {key: (get(key) or generic)(value) for key, value in item.items()}

        return decode_item

    def properties(self, schema: dict[str, Any], seen: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
        """Every property of an object schema, through ``$ref`` and ``allOf``."""
        if "$ref" in schema:
            name = schema["$ref"][len(REF_PREFIX):]
            if name in seen:
                return {}
            return self.properties(self.definitions.get(name, {}), seen | {name})
        found: dict[str, dict[str, Any]] = {}
        for part in schema.get("allOf", ()):
            found.update(self.properties(part, seen))
        for name, sub in (schema.get("properties") or {}).items():
            if sub or name not in found:  # closing allOf adds empty placeholders; keep the real schema
                found[name] = sub
        return found

    def decoder(self, schema: Any) -> Decoder | None:
        """The decoder of ``schema``, or None when the generic decoder reads it exactly."""
        if not isinstance(schema, dict):
            return None
        if "$ref" in schema:
            return self._ref(schema["$ref"][len(REF_PREFIX):])
        if DISPATCH in schema:
            return self._dispatch(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                branches = [b for b in schema[key] if not (isinstance(b, dict) and b.get("type") == "null")]
                decoders = [self.decoder(b) for b in branches]
                if all(d is None for d in decoders):
                    return None
                return decoders[0] if len(decoders) == 1 else None  # ambiguous unions are read generically
        types = schema.get("type")
        kinds = [t for t in types if t != "null"] if isinstance(types, list) else [types]
        if "number" in kinds and "integer" not in kinds:
            return _float
        if "integer" in kinds and len(kinds) == 1:
            return _integer
        if kinds == ["array"] or (kinds == [None] and "items" in schema):
            item = self.decoder(schema.get("items"))
            if item is None:
                return None
            return _list_of(item)
        if kinds in (["object"], [None]):
            if "properties" in schema or "allOf" in schema:
                return self._object(self.properties(schema), schema.get("additionalProperties"))
            extra = self.decoder(schema.get("additionalProperties"))
            if extra is not None:
                return _object_of({}, extra)
        return None

    def _object(self, properties: dict[str, dict[str, Any]], additional: Any) -> Decoder | None:
        fields = {name: self.decoder(sub) for name, sub in properties.items()}
        extra = self.decoder(additional)
        if extra is not None:  # listed properties must not fall back to the extra decoder
            return _object_of({name: d or generic for name, d in fields.items()}, extra)
        special = {name: d for name, d in fields.items() if d is not None}
        return _object_of(special, None) if special else None

    def _dispatch(self, schema: dict[str, Any]) -> Decoder | None:
        """A polymorphic value: its discriminator value picks the decoder of the definition it names."""
        dispatch = schema[DISPATCH]
        prop = dispatch["propertyName"]
        # Keywords written beside a discriminated oneOf apply to every alternative: their properties join each one's.
        beside = {name: sub for name, sub in self.properties(schema).items() if name != prop}
        by_target: dict[str, Decoder | None] = {}
        for target in dict.fromkeys(dispatch["mapping"].values()):
            if beside:
                definition = self.definitions.get(target, {})
                by_target[target] = self._object({**beside, **self.properties(definition)}, definition.get("additionalProperties"))
            else:
                by_target[target] = self._ref(target)
        base = dispatch.get("base")
        fallback = (self._ref(base) if base else None) or generic  # a value the spec does not know: read it as the base
        if all(decoder is None for decoder in by_target.values()) and fallback is generic:
            return None
        by_value = {value: by_target[target] or generic for value, target in dispatch["mapping"].items()}

        def decode_subtype(value: AttributeValue) -> Any:
            fields = value.get("M")
            tag = fields.get(prop) if fields is not None else None
            if tag is None:
                return fallback(value)
            return by_value.get(tag.get("S"), fallback)(value)

        return decode_subtype

    def _ref(self, name: str) -> Decoder | None:
        if name in self._by_ref:
            return self._by_ref[name]
        if name in self._resolving:
            # A recursive definition: decide lazily, once the cycle is resolved.
            return lambda value: (self._by_ref.get(name) or generic)(value)
        self._resolving.add(name)
        try:
            decoder = self.decoder(self.definitions.get(name, {}))
        finally:
            self._resolving.discard(name)
        self._by_ref[name] = decoder
        return decoder


def _list_of(item: Decoder) -> Decoder:
    def decode_list(value: AttributeValue) -> Any:
        values = value.get("L")
        if values is None:
            return generic(value)
        return [item(sub) for sub in values]

    return decode_list


def _object_of(fields: dict[str, Decoder], extra: Decoder | None) -> Decoder:
    fallback = extra or generic

    def decode_object(value: AttributeValue) -> Any:
        values = value.get("M")
        if values is None:
            return generic(value)
        get = fields.get
        return {key: (get(key) or fallback)(sub) for key, sub in values.items()}

    return decode_object
