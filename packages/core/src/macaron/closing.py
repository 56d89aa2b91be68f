"""Unknown fields rejected: ``close_objects`` closes the objects of an Api's schemas, once at start-up."""

from __future__ import annotations

from typing import Any

from macaron.models import copy_wire
from macaron.spec import DISPATCH, DRAFT2020, POLYMORPHIC_SUFFIX, dialect_of
from macaron.validation import REF_PREFIX
from macaron.variants import VARIANT_SUFFIXES

PART_SUFFIX = ":part"


def is_part_copy(name: str) -> bool:
    """A definition ``close_objects`` added as the open form of an ``allOf`` part, not one of the spec's."""
    return name.endswith(PART_SUFFIX)


def is_synthetic(name: str) -> bool:
    """A definition the engine added (an open part, a discriminator's dispatch, a request or response variant), not a model of its own."""
    return name.endswith((PART_SUFFIX, POLYMORPHIC_SUFFIX, *VARIANT_SUFFIXES))



class _Unevaluated(Exception):
    """A composition whose members only validation can tell (2020-12 conditionals): close it with unevaluatedProperties."""


class _Closer:
    """What close_objects does to one Api's definitions (see there); ``parts``: the definitions used as parts."""

    def __init__(self, definitions: dict[str, dict[str, Any]]) -> None:
        self.definitions = definitions
        self.modern = dialect_of(definitions) == DRAFT2020
        self.parts: set[str] = set()

    def branches_are_parts(self, schema: dict[str, Any]) -> bool:
        # Beside the object's own members, an alternative adds to them; alone, it is a whole object of its own.
        return self.modern and any(key in schema for key in ("properties", "patternProperties", "allOf", "additionalProperties", "unevaluatedProperties"))

    def in_place_parts(self, schema: dict[str, Any]) -> list[Any]:
        """The subschemas that describe more of the same object: left open, their references to open copies."""
        found = list(schema.get("allOf", ()))
        if self.modern:
            found += [schema[key] for key in ("then", "else") if key in schema]
            found += list((schema.get("dependentSchemas") or {}).values())
            if self.branches_are_parts(schema):
                found += [*schema.get("anyOf", ()), *schema.get("oneOf", ())]
        return found

    def conditional(self, schema: dict[str, Any]) -> bool:
        """Whether which of its parts' properties apply depends on the value (2020-12 only)."""
        if not self.modern:
            return False
        return any(key in schema for key in ("then", "else", "dependentSchemas")) or (self.branches_are_parts(schema) and ("anyOf" in schema or "oneOf" in schema))

    def referenced_name(self, sub: Any) -> str | None:
        return sub["$ref"][len(REF_PREFIX):] if isinstance(sub, dict) and isinstance(sub.get("$ref"), str) else None

    def collect_parts(self, schema: Any) -> None:
        if isinstance(schema, dict):
            for sub in self.in_place_parts(schema):
                name = self.referenced_name(sub)
                if name in self.definitions and DISPATCH not in self.definitions[name]:  # a dispatch is never closed, so never opened
                    self.parts.add(name)
            for value in schema.values():
                self.collect_parts(value)
        elif isinstance(schema, list):
            for value in schema:
                self.collect_parts(value)

    def rewrite_parts(self, schema: Any) -> None:
        if isinstance(schema, dict):
            for sub in self.in_place_parts(schema):
                if self.referenced_name(sub) in self.parts:
                    sub["$ref"] += PART_SUFFIX
            for value in schema.values():
                self.rewrite_parts(value)
        elif isinstance(schema, list):
            for value in schema:
                self.rewrite_parts(value)

    def property_names(self, schema: dict[str, Any], seen: set[str], top: bool = True) -> set[str] | None:
        if "$ref" in schema:
            name = schema["$ref"][len(REF_PREFIX):]
            if name in seen:
                return set()
            return self.property_names(self.definitions.get(name, {}), seen | {name}, top=False)
        if DISPATCH in schema or ("additionalProperties" in schema and schema["additionalProperties"] is not False):
            return None  # an open part keeps the whole composition open; a dispatch's subtypes close themselves
        if self.modern and not top:
            if "unevaluatedProperties" in schema and schema["unevaluatedProperties"] is not False:
                return None
            if "patternProperties" in schema or self.conditional(schema):
                raise _Unevaluated  # a list of names cannot say it: a pattern, or properties that depend on the value
        names = set(schema.get("properties", {}))
        for sub in schema.get("allOf", ()):
            more = self.property_names(sub, seen, top=False)
            if more is None:
                return None
            names |= more
        return names

    def lists_members(self, schema: Any, seen: frozenset[str]) -> bool:
        """Whether the object or one of its parts lists properties: only then is there something to close over."""
        if not isinstance(schema, dict):
            return False
        name = self.referenced_name(schema)
        if name is not None:
            return name not in seen and self.lists_members(self.definitions.get(name), seen | {name})
        return "properties" in schema or "patternProperties" in schema or any(self.lists_members(sub, seen) for sub in self.in_place_parts(schema))

    def may_be_object(self, schema: dict[str, Any]) -> bool:
        types = schema.get("type", "object")
        return "object" in types if isinstance(types, list) else types == "object"

    def close(self, schema: Any, is_part: bool = False) -> None:
        if isinstance(schema, list):
            for item in schema:
                self.close(item)
            return
        if not isinstance(schema, dict) or DISPATCH in schema:
            return  # the definitions a dispatch selects are closed; its "not this value" tests must stay open
        alternatives_are_parts = self.branches_are_parts(schema)
        for key, value in schema.items():
            if key in ("properties", "patternProperties") and isinstance(value, dict):
                for sub in value.values():
                    self.close(sub)
            elif key == "allOf":
                for sub in value:
                    self.close(sub, is_part=True)
            elif key in ("anyOf", "oneOf") and isinstance(value, list):
                for sub in value:
                    self.close(sub, is_part=alternatives_are_parts)
            elif key in ("items", "additionalProperties"):
                self.close(value)
            elif key == "not" and not self.modern:
                self.close(value)
            elif self.modern and key in ("then", "else"):
                self.close(value, is_part=True)
            elif self.modern and key == "dependentSchemas" and isinstance(value, dict):
                for sub in value.values():
                    self.close(sub, is_part=True)
            elif self.modern and key in ("prefixItems", "unevaluatedItems", "unevaluatedProperties"):
                self.close(value)
        if is_part or "additionalProperties" in schema or schema.get("x-open"):
            return
        if self.modern and ("unevaluatedProperties" in schema or not self.may_be_object(schema)):
            return
        if self.conditional(schema):
            if self.lists_members(schema, frozenset()):
                schema["unevaluatedProperties"] = False
            return
        if "allOf" in schema:
            try:
                names = self.property_names(schema, set())
            except _Unevaluated:
                schema["unevaluatedProperties"] = False
                return
            if names is not None:
                schema.setdefault("properties", {})
                for prop in names:
                    schema["properties"].setdefault(prop, {})
                schema["additionalProperties"] = False
        elif "properties" in schema and self.may_be_object(schema):
            schema["additionalProperties"] = False


def close_objects(definitions: dict[str, dict[str, Any]], schemas: list[dict[str, Any]]) -> None:
    """Reject unknown fields: objects that list properties and say nothing of others allow no others.

    Objects composed with allOf are closed over the union of their parts' properties.
    A part must stay open, or no composition could ever validate (draft 4 has no
    unevaluatedProperties); yet the same definition used on its own must be closed.
    So each definition used as an allOf part gets an open copy, ``<Name>:part``,
    that the allOf references instead; ``<Name>`` itself is closed like any other.

    In 2020-12 (OpenAPI 3.1) more subschemas are parts of the object they sit in:
    ``then``/``else``, ``dependentSchemas``, and ``anyOf``/``oneOf`` written beside
    the object's own members. Which of their properties apply depends on the value,
    so such an object is closed with ``unevaluatedProperties: false``, which counts
    the properties of the parts that matched. A schema that declares
    ``unevaluatedProperties`` itself is the author's to close, its parts left open.
    Subschemas that only test a value (``if``, ``not``, ``contains``,
    ``propertyNames``) are never closed: closing them would change what they test.
    """
    closer = _Closer(definitions)
    for schema in [*definitions.values(), *schemas]:
        closer.collect_parts(schema)
    for schema in [*definitions.values(), *schemas]:
        closer.rewrite_parts(schema)
    for name in sorted(closer.parts):
        # The definition minus its mixins: as a part it is only a set of properties.
        definitions[name + PART_SUFFIX] = {key: copy_wire(value) for key, value in definitions[name].items() if key not in ("x-parent", "x-persist")}
    for name, schema in definitions.items():
        closer.close(schema, is_part=is_part_copy(name))
    for schema in schemas:
        closer.close(schema)
