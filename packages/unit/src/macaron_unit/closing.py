"""The spec as macaron enforces it, for schemathesis to generate requests from.

macaron rejects unknown fields by default (``reject_unknown_fields``): an object
that lists its properties and says nothing of others allows no others, and one
composed with ``allOf`` allows the properties of all its parts. A spec read as
written allows them, so schemathesis would send ``{"": null, "name": "0"}`` as a
valid request and report macaron's 400 as a broken contract. This closes the
document's object schemas the way the engine does (``macaron.schemas.close_objects``),
on the document itself: ``additionalProperties: false``, the parts of an ``allOf``
left open (through an open copy when a definition is also used on its own), and a
composed object closed over the union of its parts' properties. Integers get the
64-bit range the server carries, unless they have bounds of their own.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

PART_SUFFIX = "__part"
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_VALUES = ("items", "not", "additionalProperties", "additionalItems", "contains", "propertyNames", "if", "then", "else")
SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas")
INT_LOW, INT_HIGH = -(2**63), 2**64 - 1  # what macaron's JSON library carries
# Objects whose properties depend on the value (2020-12): closing them with additionalProperties would be wrong.
CONDITIONAL = ("if", "then", "else", "dependentSchemas", "unevaluatedProperties")


def closed_document(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of a bundled Swagger 2.0 or OpenAPI 3 document (local ``$ref``s only) with its objects closed."""
    document = copy.deepcopy(document)
    swagger = "swagger" in document
    definitions: dict[str, Any] = document.get("definitions", {}) if swagger else document.get("components", {}).get("schemas", {})
    prefix = "#/definitions/" if swagger else "#/components/schemas/"
    roots = list(_root_schemas(document, swagger))

    # The parts of every allOf stay open; a definition used as a part gets an open copy for that use.
    open_ids: set[int] = set()
    for root in roots:
        for schema in _subschemas(root):
            for part in schema.get("allOf", ()):
                if not isinstance(part, dict):
                    continue
                ref = part.get("$ref")
                if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] in definitions:
                    name = ref[len(prefix) :]
                    if name + PART_SUFFIX not in definitions:
                        definitions[name + PART_SUFFIX] = copy.deepcopy(definitions[name])
                        roots.append(definitions[name + PART_SUFFIX])
                    open_ids.add(id(definitions[name + PART_SUFFIX]))
                    part["$ref"] = prefix + name + PART_SUFFIX
                else:
                    open_ids.add(id(part))

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(prefix):
            target = definitions.get(ref[len(prefix) :])
            return target if isinstance(target, dict) else {}
        return schema

    def property_names(schema: dict[str, Any], seen: frozenset[int] = frozenset()) -> list[str]:
        schema = resolve(schema)
        if id(schema) in seen:
            return []
        names = list(schema.get("properties") or {})
        for part in schema.get("allOf", ()):
            if isinstance(part, dict):
                names += property_names(part, seen | {id(schema)})
        return names

    closed: set[int] = set()
    for root in roots:
        for schema in _subschemas(root):
            _bound_integer(schema)
            if id(schema) in open_ids or id(schema) in closed or not _closable(schema):
                continue
            closed.add(id(schema))
            if "allOf" in schema:
                names = property_names(schema)
                schema["properties"] = {**{name: {} for name in names}, **(schema.get("properties") or {})}
            schema["additionalProperties"] = False
    return document


def _bound_integer(schema: dict[str, Any]) -> None:
    """An integer without bounds of its own gets the 64-bit range, beyond which the server answers 400."""
    types = schema.get("type")
    if types != "integer" and not (isinstance(types, list) and "integer" in types):
        return
    schema.setdefault("minimum", INT_LOW)
    schema.setdefault("maximum", INT_HIGH)


def _closable(schema: dict[str, Any]) -> bool:
    if "additionalProperties" in schema or "$ref" in schema or any(key in schema for key in CONDITIONAL):
        return False
    if schema.get("type", "object") != "object":
        return False
    return isinstance(schema.get("properties"), dict) or "allOf" in schema


def _subschemas(schema: Any) -> Iterator[dict[str, Any]]:
    """``schema`` and every schema inside it, parents first."""
    if not isinstance(schema, dict):
        return
    yield schema
    for key in SCHEMA_LISTS:
        for item in schema.get(key) or ():
            yield from _subschemas(item)
    for key in SCHEMA_VALUES:
        yield from _subschemas(schema.get(key))
    for key in SCHEMA_MAPS:
        for item in (schema.get(key) or {}).values():
            yield from _subschemas(item)


def _root_schemas(document: dict[str, Any], swagger: bool) -> Iterator[dict[str, Any]]:
    """Every schema the document holds outside other schemas: definitions, parameters, bodies, responses."""
    def media(content: Any) -> Iterator[dict[str, Any]]:
        for entry in (content or {}).values():
            if isinstance(entry, dict) and isinstance(entry.get("schema"), dict):
                yield entry["schema"]

    def parameter_or_response(value: Any) -> Iterator[dict[str, Any]]:
        if isinstance(value, dict):
            if isinstance(value.get("schema"), dict):
                yield value["schema"]
            elif swagger and "type" in value and "in" in value:
                yield value  # a Swagger 2.0 parameter outside the body is its own schema (type, items, bounds)
            yield from media(value.get("content"))

    def operation(value: Any) -> Iterator[dict[str, Any]]:
        if not isinstance(value, dict):
            return
        for parameter in value.get("parameters") or ():
            yield from parameter_or_response(parameter)
        yield from parameter_or_response(value.get("requestBody"))
        for response in (value.get("responses") or {}).values():
            yield from parameter_or_response(response)

    if swagger:
        yield from (s for s in (document.get("definitions") or {}).values() if isinstance(s, dict))
        for section in ("parameters", "responses"):
            for value in (document.get(section) or {}).values():
                yield from parameter_or_response(value)
    else:
        components = document.get("components") or {}
        yield from (s for s in (components.get("schemas") or {}).values() if isinstance(s, dict))
        for section in ("parameters", "requestBodies", "responses"):
            for value in (components.get(section) or {}).values():
                yield from parameter_or_response(value)
    for item in (document.get("paths") or {}).values():
        if isinstance(item, dict):
            yield from operation(item)  # path-level parameters
            for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
                yield from operation(item.get(method))
