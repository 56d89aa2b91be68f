"""Compiled validators and model classes, built once at start-up from an Api's schemas.

Validation uses jsonschema-rs: compiled in microseconds, a valid instance checked in
well under a microsecond, and every error reported with its JSON path. The fast
``is_valid`` runs on every request; ``iter_errors`` only once something is wrong.
Schemas are compiled in the dialect of their Api's definitions (see macaron.spec):
draft 4 for Swagger 2.0 and OpenAPI 3.0, 2020-12 for OpenAPI 3.1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, ClassVar

import jsonschema_rs
import orjson

from macaron.importing import DottedPathError, import_object
from macaron.models import ApiModels, Converter, Model, PolymorphicModel, WireDict, WireList, _identity, copy_wire, parse_datetime
from macaron.spec import DISPATCH, DRAFT4, DRAFT2020, POLYMORPHIC_SUFFIX, Api, Response, SpecError, dialect_of, python_name

Problems = list[dict[str, str]]
REF_PREFIX = "#/definitions/"


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _json(value: Any, limit: int = 120) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _problem(error: Any, prefix: str, document: Any) -> list[dict[str, str]]:
    path = "".join("/" + escape(str(token)) for token in error.instance_path)
    kind = error.kind
    kinds = jsonschema_rs.ValidationErrorKind
    if isinstance(kind, kinds.Required):
        schema_path = list(error.schema_path)
        dispatch = _dispatch_at(document, schema_path[:-1])
        if dispatch is not None and kind.property == dispatch["propertyName"]:
            return [{"field": f"{prefix}{path}/{escape(kind.property)}", "message": f"is required ({_discriminator_note(dispatch)})"}]
        if schema_path and schema_path[-1] in ("dependentRequired", "dependencies"):
            return [{"field": f"{prefix}{path}/{escape(kind.property)}", "message": f"is required {_required_by(error, document, schema_path)}"}]
        return [{"field": f"{prefix}{path}/{escape(kind.property)}", "message": "is required"}]
    if isinstance(kind, (kinds.AdditionalProperties, kinds.UnevaluatedProperties)):
        rule = _node_at(document, list(error.schema_path))
        if isinstance(rule, dict) and isinstance(error.instance, dict):  # unevaluatedProperties: {a schema}: why each value breaks it
            return [p for name in kind.unexpected for p in _problems_against(rule, error.instance.get(name), f"{prefix}{path}/{escape(name)}", document)]
        return [{"field": f"{prefix}{path}/{escape(name)}", "message": "is not allowed here (unknown field)"} for name in kind.unexpected]
    if isinstance(kind, kinds.UnevaluatedItems):
        rule = _node_at(document, list(error.schema_path))
        found = []
        for index in _unevaluated_indexes(error.instance, kind.unexpected):
            if isinstance(rule, dict):
                found += _problems_against(rule, error.instance[index], f"{prefix}{path}/{index}", document)
            else:
                found.append({"field": f"{prefix}{path}/{index}", "message": "is not allowed here (no schema describes this item)"})
        return found
    if isinstance(kind, kinds.Not) and kind.schema == {}:
        hidden = _node_at(document, list(error.schema_path)[:-1])
        if isinstance(hidden, dict) and hidden.get(HIDDEN) in HIDDEN_MESSAGES:
            return [{"field": f"{prefix}{path}", "message": HIDDEN_MESSAGES[hidden[HIDDEN]]}]
    if isinstance(kind, kinds.FalseSchema) or (isinstance(kind, kinds.Not) and kind.schema == {}):
        return [{"field": f"{prefix}{path}", "message": "is not allowed here"}]  # a `false` schema: nothing may be here
    if isinstance(kind, kinds.Constant):
        return [{"field": f"{prefix}{path}", "message": f"{_json(error.instance)} is not {_json(kind.expected_value)} (the only value allowed)"}]
    if isinstance(kind, kinds.PropertyNames):
        inner = kind.error
        return [{"field": f"{prefix}{path}/{escape(str(inner.instance))}", "message": f"is not an allowed property name: {inner.message}"}]
    if isinstance(kind, kinds.Contains):
        return [{"field": f"{prefix}{path}", "message": _contains_message(document, list(error.schema_path))}]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Enum):
        # jsonschema-rs names only the first few choices; a caller needs them all.
        choices = ", ".join(orjson.dumps(option).decode() for option in kind.options)
        message = f"{orjson.dumps(error.instance).decode()} is not one of {choices}"
        dispatch = _dispatch_at(document, list(error.schema_path)[:-3])  # <dispatcher>/properties/<name>/enum
        if dispatch is not None:
            of = f" of {dispatch['base']}" if dispatch.get("base") else ""
            message += f" (the discriminator{of})"
        return [{"field": f"{prefix}{path}", "message": message}]
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AnyOf) and kind.context:
        # A nullable reference is anyOf [ref, null]: report why the value fails the ref, not "any of".
        # A discriminator's "value is not X, or it is a valid X" fails in its second branch.
        # (A readOnly or writeOnly property's refusal is a `not: {}` too, but of the branch that matters.)
        branches = [b for b in kind.context if not (len(b) == 1 and ('"null"' in b[0].message or (isinstance(b[0].kind, kinds.Not) and b[0].kind.schema != {})))]
        if len(branches) == 1:
            return [problem for sub in branches[0] for problem in _problem(sub, prefix, document)]
    return [{"field": f"{prefix}{path}", "message": str(error.message)}]


def _node_at(document: Any, tokens: list[Any]) -> Any:
    """The schema at ``tokens`` (an error's schema path: jsonschema-rs gives it with references followed)."""
    node = document
    for token in tokens:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and isinstance(token, int) and token < len(node):
            node = node[token]
        else:
            return None
    return node


def _dispatch_at(document: Any, tokens: list[Any]) -> dict[str, Any] | None:
    """The discriminator dispatch marker of the schema at ``tokens`` (an error's schema path), if it is one."""
    node = _node_at(document, tokens)
    dispatch = node.get(DISPATCH) if isinstance(node, dict) else None
    return dispatch if isinstance(dispatch, dict) else None


def _problems_against(rule: dict[str, Any], value: Any, field: str, document: Any) -> list[dict[str, str]]:
    """Why ``value`` breaks ``rule``, a subschema jsonschema-rs reports only as a whole (unevaluatedProperties/Items: {...})."""
    sub_document = {**rule, "definitions": document.get("definitions", {})} if isinstance(document, dict) else dict(rule)
    validator = jsonschema_rs.Draft202012Validator(sub_document, validate_formats=True)  # these keywords exist in 2020-12 only
    return [problem for error in validator.iter_errors(value) for problem in _problem(error, field, sub_document)]


def _unevaluated_indexes(items: Any, unexpected: list[Any]) -> list[int]:
    """Where the items jsonschema-rs names by their JSON text are: the last ones that read so (they are the array's tail)."""
    if not isinstance(items, list):
        return []
    wanted = [str(text) for text in unexpected]
    indexes = []
    for index in range(len(items) - 1, -1, -1):
        text = orjson.dumps(items[index]).decode()
        if text in wanted:
            wanted.remove(text)
            indexes.append(index)
    return sorted(indexes)


def _required_by(error: Any, document: Any, schema_path: list[Any]) -> str:
    """Why a ``dependentRequired`` property is required: the present properties that require it."""
    rules = _node_at(document, schema_path)
    instance = error.instance if isinstance(error.instance, dict) else {}
    if isinstance(rules, dict):
        causes = [name for name, needs in rules.items() if name in instance and isinstance(needs, list) and error.kind.property in needs]
        if causes:
            return "when " + ", ".join(f"'{name}'" for name in causes) + (" is" if len(causes) == 1 else " are") + " present"
    return "here (dependentRequired)"


def _contains_message(document: Any, schema_path: list[Any]) -> str:
    schema = _node_at(document, schema_path[:-1])  # the array's schema, whose contains/minContains/maxContains failed
    schema = schema if isinstance(schema, dict) else {}
    wanted = _json(schema.get("contains", {}))
    # jsonschema-rs reports minContains and maxContains together: the message gives both bounds.
    least, most = schema.get("minContains", 1), schema.get("maxContains")
    if most is None:
        return f"must contain at least {least} item(s) matching {wanted}"
    if least == most:
        return f"must contain exactly {least} item(s) matching {wanted}"
    return f"must contain {least} to {most} item(s) matching {wanted}"


def _discriminator_note(dispatch: dict[str, Any]) -> str:
    values = ", ".join(orjson.dumps(value).decode() for value in dispatch["mapping"])
    of = f" of {dispatch['base']}" if dispatch.get("base") else ""
    return f"the discriminator{of}: one of {values}"


def dispatch_schema(
    prop: str, mapping: dict[str, str], base: str | None, extends: list[str] | None = None, siblings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A schema that validates an object by the definition its discriminator value names (``mapping``: value -> definition).

    Draft 4 has no if/then, so each "value v selects T" is written "not v, or a
    valid T" (anyOf [not, ref]): the right definition is checked, and only it, at the
    cost of one enum test per definition. ``siblings`` are the keywords written
    beside a discriminated ``oneOf``, which apply whatever the value.
    """
    by_target: dict[str, list[str]] = {}
    for value, target in mapping.items():
        by_target.setdefault(target, []).append(value)
    selects = [
        {"anyOf": [{"not": {"type": "object", "required": [prop], "properties": {prop: {"enum": values}}}}, {"$ref": REF_PREFIX + target}]}
        for target, values in by_target.items()
    ]
    return {
        DISPATCH: {"propertyName": prop, "mapping": dict(mapping), "base": base, "extends": list(extends or [])},
        "type": "object",
        "required": [prop],
        "properties": {prop: {"enum": list(mapping)}},
        "allOf": [*([siblings] if siblings else []), *selects],
    }


def _direct_refs(schema: Any) -> set[str]:
    names: set[str] = set()
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF_PREFIX):
                names.add(ref[len(REF_PREFIX):])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return names


# id(definitions) -> definition name -> every definition it reaches (itself included)
_closures: dict[int, tuple[dict[str, Any], dict[str, frozenset[str]]]] = {}


def _closure(name: str, definitions: dict[str, Any]) -> frozenset[str]:
    entry = _closures.get(id(definitions))
    if entry is None or entry[0] is not definitions:
        entry = _closures[id(definitions)] = (definitions, {})
    memo = entry[1]
    found = memo.get(name)
    if found is None:
        seen = {name}
        pending = [name]
        while pending:
            for ref in _direct_refs(definitions.get(pending.pop(), {})):
                if ref not in seen:
                    seen.add(ref)
                    pending.append(ref)
        found = memo[name] = frozenset(seen)
    return found


def referenced(schema: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    """The definitions a schema needs, directly or through other definitions."""
    names: set[str] = set()
    for name in _direct_refs(schema):
        names |= _closure(name, definitions)
    return {name: definitions[name] for name in sorted(names) if name in definitions}


_compiled: dict[bytes, jsonschema_rs.Validator] = {}
VALIDATORS: dict[str, Callable[..., jsonschema_rs.Validator]] = {DRAFT4: jsonschema_rs.Draft4Validator, DRAFT2020: jsonschema_rs.Draft202012Validator}


def compile_schema(schema: dict[str, Any], definitions: dict[str, Any], dialect: str | None = None) -> jsonschema_rs.Validator:
    """A validator for ``schema``, shared by every operation with the same schema, in the definitions' dialect."""
    dialect = dialect or dialect_of(definitions)
    document = dict(schema)
    needed = referenced(schema, definitions)
    if needed:
        # Only what the schema reaches: compiling all of a large spec's definitions per operation is slow.
        document["definitions"] = needed
    key = dialect.encode() + orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    validator = _compiled.get(key)
    if validator is None:
        validator = _compiled[key] = VALIDATORS[dialect](document, validate_formats=True)
    return validator


class Checker:
    """A compiled schema: ``problems(instance)`` is empty when the instance is valid."""

    __slots__ = ("_definitions", "_schema", "_validator", "is_valid", "prefix")

    def __init__(self, schema: dict[str, Any], definitions: dict[str, Any], prefix: str = "") -> None:
        self._validator = compile_schema(schema, definitions)
        self._schema = schema
        self._definitions = definitions
        self.is_valid: Callable[[Any], bool] = self._validator.is_valid
        self.prefix = prefix

    @property
    def validator(self) -> jsonschema_rs.Validator:
        """The compiled validator, shared by every Checker of the same schema."""
        return self._validator

    def problems(self, instance: Any) -> Problems:
        if self.is_valid(instance):
            return []
        # The document the errors' schema paths point into, for the discriminator's messages.
        document = {**self._schema, "definitions": self._definitions}
        found: Problems = []
        for error in self._validator.iter_errors(instance):
            for problem in _problem(error, self.prefix, document):
                if problem not in found:
                    found.append(problem)
        # A discriminator also listed in a schema's required: keep the message that names the values.
        explained = {p["field"] for p in found if p["message"].startswith("is required (")}
        return [p for p in found if not (p["message"] == "is required" and p["field"] in explained)]


PART_SUFFIX = ":part"


def is_part_copy(name: str) -> bool:
    """A definition ``close_objects`` added as the open form of an ``allOf`` part, not one of the spec's."""
    return name.endswith(PART_SUFFIX)


def is_synthetic(name: str) -> bool:
    """A definition the engine added (an open part, a discriminator's dispatch, a request or response variant), not a model of its own."""
    return name.endswith((PART_SUFFIX, POLYMORPHIC_SUFFIX, *VARIANT_SUFFIXES))


# -- readOnly and writeOnly: what requests and responses may carry ---------------------------

READ_ONLY_SETTING = "read_only_in_requests"
READ_ONLY_MODES = ("reject", "accept")
HIDDEN = "x-hidden"  # marks the schema that refuses a readOnly property in a request, a writeOnly one in a response
HIDDEN_MESSAGES = {
    "readOnly": "is read-only: the server sets it, a request may not send it",
    "writeOnly": "is write-only: a response may not carry it",
}
# (keyword hidden, whether it is refused or only not required) -> suffix of the variant definitions
VARIANTS = {("readOnly", True): ":request", ("readOnly", False): ":request+ro", ("writeOnly", True): ":response"}
VARIANT_SUFFIXES = tuple(VARIANTS.values())
# Left as written: subschemas that test a value (changing them would change what they test), and values.
_NOT_TRANSFORMED = frozenset({"not", "if", "contains", "propertyNames", "enum", "const", "default", "example", "examples"})


def read_only_setting(config: Any) -> str:
    """How readOnly properties sent in a request are treated: ``reject`` (a 400 naming them, the default) or ``accept``."""
    value = config.get(READ_ONLY_SETTING, "reject") if config is not None else "reject"
    if value not in READ_ONLY_MODES:
        from macaron.config import ConfigError

        where = config.where() if hasattr(config, "where") else "the configuration"
        raise ConfigError(f"{where}: '{READ_ONLY_SETTING}' must be 'reject' or 'accept', not {value!r}")
    return str(value)


def request_variant(schema: dict[str, Any], definitions: dict[str, Any], accept_read_only: bool = False) -> dict[str, Any]:
    """``schema`` as a request must meet it: readOnly properties refused (or accepted), and never required."""
    return _Variants.of(definitions, "readOnly", not accept_read_only).schema(schema)


def response_variant(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """``schema`` as a response must meet it: writeOnly properties refused, and never required."""
    return _Variants.of(definitions, "writeOnly", True).schema(schema)


class _Variants:
    """The definitions of an Api as one direction sees them, made once, where a property is readOnly or writeOnly.

    OpenAPI: a readOnly property is only in responses, a writeOnly one only in
    requests; listed in ``required``, it is required in that direction only. So a
    definition that has such a property, or reaches one through its references, gets
    a variant (``Pet:request``, ``Pet:response``) where it is refused (``not: {}``,
    marked for the message) or merely optional, and references to it lead there. A
    schema that reaches none comes back as it is: an API without these keywords
    compiles exactly what it did.
    """

    _made: ClassVar[dict[tuple[int, str, bool], tuple[dict[str, Any], _Variants]]] = {}

    @classmethod
    def of(cls, definitions: dict[str, Any], keyword: str, refuse: bool) -> _Variants:
        key = (id(definitions), keyword, refuse)
        entry = cls._made.get(key)
        if entry is None or entry[0] is not definitions:
            entry = cls._made[key] = (definitions, cls(definitions, keyword, refuse))
        return entry[1]

    def __init__(self, definitions: dict[str, Any], keyword: str, refuse: bool) -> None:
        self.definitions = definitions
        self.keyword = keyword
        self.refuse = refuse
        self.suffix = VARIANTS[(keyword, refuse)]
        originals = [name for name in definitions if not name.endswith(VARIANT_SUFFIXES)]
        direct = {name for name in originals if self._has_hidden(definitions[name])}
        self.affected = {name for name in originals if direct & _closure(name, definitions)} if direct else set()

    def schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        if not self.affected and not self._has_hidden(schema):
            return schema
        transformed: dict[str, Any] = self._transform(schema, frozenset())
        return transformed

    def _hidden(self, schema: Any) -> bool:
        """Whether a property's schema is marked with the keyword (on it, or on the definition it names)."""
        seen: set[str] = set()
        while isinstance(schema, dict):
            if schema.get(self.keyword) is True:
                return True
            ref = schema.get("$ref")
            if not isinstance(ref, str):
                branches = [b for b in schema.get("anyOf") or schema.get("allOf") or () if b != {"type": "null"}]
                if len(branches) != 1 or "properties" in schema:
                    return False
                schema = branches[0]
                continue
            if ref in seen:
                return False
            seen.add(ref)
            schema = self.definitions.get(ref[len(REF_PREFIX) :])
        return False

    def _has_hidden(self, schema: Any) -> bool:
        """Whether a hidden property is anywhere in the schema itself (its references not followed)."""
        if isinstance(schema, list):
            return any(self._has_hidden(item) for item in schema)
        if not isinstance(schema, dict):
            return False
        if isinstance(schema.get("properties"), dict) and any(self._hidden(sub) for sub in schema["properties"].values()):
            return True
        return any(self._has_hidden(value) for key, value in schema.items() if key not in _NOT_TRANSFORMED and not key.startswith("x-") and isinstance(value, (dict, list)))

    def _family_hidden(self, schema: Any, seen: frozenset[str]) -> set[str]:
        """The hidden properties of an object: its own and its allOf parts' (through their references)."""
        if not isinstance(schema, dict):
            return set()
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref[len(REF_PREFIX) :]
            return set() if name in seen else self._family_hidden(self.definitions.get(name), seen | {name})
        found = {prop for prop, sub in (schema.get("properties") or {}).items() if self._hidden(sub)}
        for part in schema.get("allOf", ()):
            found |= self._family_hidden(part, seen)
        return found

    def _reference(self, ref: str) -> str:
        name = ref[len(REF_PREFIX) :]
        if name not in self.affected:
            return ref
        variant = name + self.suffix
        if variant not in self.definitions:
            self.definitions[variant] = {}  # named before it is made: a recursive definition refers to itself
            source = {key: value for key, value in self.definitions[name].items() if key not in ("x-parent", "x-persist")}
            self.definitions[variant] = self._transform(source, frozenset())
        return REF_PREFIX + variant

    def _transform(self, node: Any, inherited: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [self._transform(item, frozenset()) for item in node]
        if not isinstance(node, dict):
            return node
        hidden = inherited | self._family_hidden(node, frozenset())
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = self._reference(value)
            elif key == "properties" and isinstance(value, dict):
                out[key] = {prop: self._property(sub) for prop, sub in value.items()}
            elif key == "required" and isinstance(value, list):
                out[key] = [prop for prop in value if prop not in hidden]
            elif key == "allOf" and isinstance(value, list):
                out[key] = [self._transform(part, hidden) for part in value]  # a part's required may name its siblings' properties
            elif key in _NOT_TRANSFORMED or key.startswith("x-") or not isinstance(value, (dict, list)):
                out[key] = value
            elif key in ("patternProperties", "dependentSchemas") and isinstance(value, dict):
                out[key] = {name: self._transform(sub, frozenset()) for name, sub in value.items()}
            else:
                out[key] = self._transform(value, frozenset())
        if "required" in out and not out["required"]:
            del out["required"]  # draft 4 wants a non-empty list
        return out

    def _property(self, schema: Any) -> Any:
        if self.refuse and self._hidden(schema):
            return {"not": {}, HIDDEN: self.keyword}
        return self._transform(schema, frozenset())


class _Unevaluated(Exception):
    """A composition whose members only validation can tell (2020-12 conditionals): close it with unevaluatedProperties."""


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
    modern = dialect_of(definitions) == DRAFT2020
    parts: set[str] = set()

    def branches_are_parts(schema: dict[str, Any]) -> bool:
        # Beside the object's own members, an alternative adds to them; alone, it is a whole object of its own.
        return modern and any(key in schema for key in ("properties", "patternProperties", "allOf", "additionalProperties", "unevaluatedProperties"))

    def in_place_parts(schema: dict[str, Any]) -> list[Any]:
        """The subschemas that describe more of the same object: left open, their references to open copies."""
        found = list(schema.get("allOf", ()))
        if modern:
            found += [schema[key] for key in ("then", "else") if key in schema]
            found += list((schema.get("dependentSchemas") or {}).values())
            if branches_are_parts(schema):
                found += [*schema.get("anyOf", ()), *schema.get("oneOf", ())]
        return found

    def conditional(schema: dict[str, Any]) -> bool:
        """Whether which of its parts' properties apply depends on the value (2020-12 only)."""
        if not modern:
            return False
        return any(key in schema for key in ("then", "else", "dependentSchemas")) or (branches_are_parts(schema) and ("anyOf" in schema or "oneOf" in schema))

    def referenced_name(sub: Any) -> str | None:
        return sub["$ref"][len(REF_PREFIX):] if isinstance(sub, dict) and isinstance(sub.get("$ref"), str) else None

    def collect_parts(schema: Any) -> None:
        if isinstance(schema, dict):
            for sub in in_place_parts(schema):
                name = referenced_name(sub)
                if name in definitions and DISPATCH not in definitions[name]:  # a dispatch is never closed, so never opened
                    parts.add(name)
            for value in schema.values():
                collect_parts(value)
        elif isinstance(schema, list):
            for value in schema:
                collect_parts(value)

    def rewrite_parts(schema: Any) -> None:
        if isinstance(schema, dict):
            for sub in in_place_parts(schema):
                if referenced_name(sub) in parts:
                    sub["$ref"] += PART_SUFFIX
            for value in schema.values():
                rewrite_parts(value)
        elif isinstance(schema, list):
            for value in schema:
                rewrite_parts(value)

    def property_names(schema: dict[str, Any], seen: set[str], top: bool = True) -> set[str] | None:
        if "$ref" in schema:
            name = schema["$ref"][len(REF_PREFIX):]
            if name in seen:
                return set()
            return property_names(definitions.get(name, {}), seen | {name}, top=False)
        if DISPATCH in schema or ("additionalProperties" in schema and schema["additionalProperties"] is not False):
            return None  # an open part keeps the whole composition open; a dispatch's subtypes close themselves
        if modern and not top:
            if "unevaluatedProperties" in schema and schema["unevaluatedProperties"] is not False:
                return None
            if "patternProperties" in schema or conditional(schema):
                raise _Unevaluated  # a list of names cannot say it: a pattern, or properties that depend on the value
        names = set(schema.get("properties", {}))
        for sub in schema.get("allOf", ()):
            more = property_names(sub, seen, top=False)
            if more is None:
                return None
            names |= more
        return names

    def lists_members(schema: Any, seen: frozenset[str]) -> bool:
        """Whether the object or one of its parts lists properties: only then is there something to close over."""
        if not isinstance(schema, dict):
            return False
        name = referenced_name(schema)
        if name is not None:
            return name not in seen and lists_members(definitions.get(name), seen | {name})
        return "properties" in schema or "patternProperties" in schema or any(lists_members(sub, seen) for sub in in_place_parts(schema))

    def may_be_object(schema: dict[str, Any]) -> bool:
        types = schema.get("type", "object")
        return "object" in types if isinstance(types, list) else types == "object"

    def close(schema: Any, is_part: bool = False) -> None:
        if isinstance(schema, list):
            for item in schema:
                close(item)
            return
        if not isinstance(schema, dict) or DISPATCH in schema:
            return  # the definitions a dispatch selects are closed; its "not this value" tests must stay open
        alternatives_are_parts = branches_are_parts(schema)
        for key, value in schema.items():
            if key in ("properties", "patternProperties") and isinstance(value, dict):
                for sub in value.values():
                    close(sub)
            elif key == "allOf":
                for sub in value:
                    close(sub, is_part=True)
            elif key in ("anyOf", "oneOf") and isinstance(value, list):
                for sub in value:
                    close(sub, is_part=alternatives_are_parts)
            elif key in ("items", "additionalProperties"):
                close(value)
            elif key == "not" and not modern:
                close(value)
            elif modern and key in ("then", "else"):
                close(value, is_part=True)
            elif modern and key == "dependentSchemas" and isinstance(value, dict):
                for sub in value.values():
                    close(sub, is_part=True)
            elif modern and key in ("prefixItems", "unevaluatedItems", "unevaluatedProperties"):
                close(value)
        if is_part or "additionalProperties" in schema or schema.get("x-open"):
            return
        if modern and ("unevaluatedProperties" in schema or not may_be_object(schema)):
            return
        if conditional(schema):
            if lists_members(schema, frozenset()):
                schema["unevaluatedProperties"] = False
            return
        if "allOf" in schema:
            try:
                names = property_names(schema, set())
            except _Unevaluated:
                schema["unevaluatedProperties"] = False
                return
            if names is not None:
                schema.setdefault("properties", {})
                for prop in names:
                    schema["properties"].setdefault(prop, {})
                schema["additionalProperties"] = False
        elif "properties" in schema and may_be_object(schema):
            schema["additionalProperties"] = False

    for schema in [*definitions.values(), *schemas]:
        collect_parts(schema)
    for schema in [*definitions.values(), *schemas]:
        rewrite_parts(schema)
    for name in sorted(parts):
        # The definition minus its mixins: as a part it is only a set of properties.
        definitions[name + PART_SUFFIX] = {key: copy_wire(value) for key, value in definitions[name].items() if key not in ("x-parent", "x-persist")}
    for name, schema in definitions.items():
        close(schema, is_part=is_part_copy(name))
    for schema in schemas:
        close(schema)


def is_nullable(schema: dict[str, Any]) -> bool:
    """Whether a schema accepts null (``x-nullable``/``nullable`` became a type list or anyOf with null)."""
    types = schema.get("type")
    if isinstance(types, list) and "null" in types:
        return True
    return any(isinstance(branch, dict) and branch.get("type") == "null" for branch in schema.get("anyOf", ()))


def is_object_schema(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object" or "properties" in schema or "allOf" in schema


class ModelFactory:
    """Builds the model classes of one Api and the converters that turn wire data into them."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.models = ApiModels(api.name)
        self._checkers: dict[str, Checker] = {}

    def build(self) -> ApiModels:
        definitions = self.api.definitions
        models = self.models._models

        def make(name: str) -> type[Model]:
            model = models.get(name)
            if model is None:
                dispatch = self._dispatch(name)
                # A subtype's class derives from its bases' (allOf), so they are made first.
                parents = [make(parent) for parent in dispatch["extends"]] if dispatch else []
                model = models[name] = self._class(name, definitions[name], dispatch, parents)
            return model

        for name, schema in definitions.items():
            if not is_synthetic(name) and (is_object_schema(schema) or self._dispatch(name)):
                make(name)
        for name, cls in models.items():
            properties = self._properties(definitions[name], set())
            cls._converters = {prop: self.converter(sub) for prop, sub in properties.items()}
            cls._attributes = {_attribute(prop): prop for prop in properties if _attribute(prop) != prop}
            cls._nullable = frozenset(prop for prop, sub in properties.items() if is_nullable(sub))
            dispatch = self._dispatch(name)
            if dispatch is not None and issubclass(cls, PolymorphicModel):
                cls._subtypes = {value: models[target] for value, target in dispatch["mapping"].items() if target in models}
        return self.models

    def _dispatch(self, name: str) -> dict[str, Any] | None:
        """How the polymorphic form of definition ``name`` picks a subtype, when it has a discriminator."""
        dispatch = self.api.definitions.get(name + POLYMORPHIC_SUFFIX, {}).get(DISPATCH)
        return dispatch if isinstance(dispatch, dict) else None

    def _class(self, name: str, schema: dict[str, Any], dispatch: dict[str, Any] | None = None, parents: list[type[Model]] | None = None) -> type[Model]:
        base: tuple[type, ...] = tuple(parents) if parents else ((PolymorphicModel,) if dispatch else (Model,))
        bases = base
        parent = schema.get("x-parent")
        if parent:
            bases = (_import(parent, self.api, name), *base)
        namespace: dict[str, Any] = {
            "__slots__": (),
            "__module__": f"macaron.apis.{self.api.name}",
            "__qualname__": name,
            "_name": name,
            "_api": self.api.name,
            "_schema": schema,
            "_validate": self._lazy_validate(name),
        }
        if dispatch is not None:
            namespace["_discriminator"] = dispatch["propertyName"]
            namespace["_own_value"] = next((value for value, target in dispatch["mapping"].items() if target == name), None)
        try:
            return type(name, bases, namespace)
        except TypeError as exc:
            raise SpecError(self.api.file, f"/definitions/{escape(name)}/x-parent", f"cannot mix {parent} into the model: {exc}") from exc

    def _lazy_validate(self, name: str) -> Callable[[Any], Problems]:
        # With a discriminator, a model validates as its polymorphic form: Pet.from_json checks a Cat as a Cat.
        target = name + POLYMORPHIC_SUFFIX if self._dispatch(name) else name

        # Compiled on first use: model validation is for scripts and handlers, not the request path.
        def validate(data: Any) -> Problems:
            checker = self._checkers.get(name)
            if checker is None:
                checker = self._checkers[name] = Checker({"$ref": REF_PREFIX + target}, self.api.definitions)
            model = self.models._models.get(name)
            if model is not None and model.__dict__.get("_validate") is validate:
                model._validate = checker.problems  # compiled: later calls go straight to it
            return checker.problems(data)

        return validate

    def model_of(self, schema: dict[str, Any]) -> type[Model] | None:
        """The model a ``$ref`` schema names; for a polymorphic reference, the base its subtypes derive from."""
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return None
        name = ref[len(REF_PREFIX):]
        dispatch = self.api.definitions.get(name, {}).get(DISPATCH)
        if isinstance(dispatch, dict) and dispatch.get("base"):
            name = dispatch["base"]
        return self.models._models.get(name)

    def model_statuses(self, responses: dict[int | str, Response]) -> dict[type, int]:
        """The 2xx status a returned model gets by default: the one declared with its definition, else its base's."""
        statuses: dict[type, int] = {}
        for status, response in responses.items():
            if isinstance(status, int) and 200 <= status < 300 and response.schema:
                model = self.model_of(response.schema)
                if model is not None:
                    statuses.setdefault(model, status)
        for model, status in list(statuses.items()):
            for subtype in getattr(model, "_subtypes", {}).values():
                statuses.setdefault(subtype, status)
        return statuses

    def _properties(self, schema: dict[str, Any], seen: set[str]) -> dict[str, dict[str, Any]]:
        if "$ref" in schema:
            name = schema["$ref"][len(REF_PREFIX):]
            if name in seen:
                return {}
            return self._properties(self.api.definitions.get(name, {}), seen | {name})
        props: dict[str, dict[str, Any]] = {}
        # Parts of the same object (allOf; in 2020-12 also then/else, dependentSchemas and alternatives beside
        # properties of its own): a property they describe is one of the model's.
        parts = [*schema.get("allOf", ()), *(schema[key] for key in ("then", "else") if key in schema), *(schema.get("dependentSchemas") or {}).values()]
        if "properties" in schema:
            parts += [*schema.get("anyOf", ()), *schema.get("oneOf", ())]
        for sub in parts:
            if isinstance(sub, dict):
                props.update(self._properties(sub, seen))
        for prop, sub in schema.get("properties", {}).items():
            if sub or prop not in props:  # allOf closing adds empty placeholders; keep the real schema
                props[prop] = sub
        return props

    def converter(self, schema: dict[str, Any]) -> Converter:
        """How a wire value of ``schema`` becomes a Python value."""
        if "$ref" in schema:
            name = schema["$ref"][len(REF_PREFIX):]
            model = self.models._models.get(name)
            if model is not None:
                return model._wrap
            return self.converter(self.api.definitions.get(name, {}))
        if DISPATCH in schema:
            return self._dispatch_converter(schema[DISPATCH])
        parts = schema.get("allOf")
        if isinstance(parts, list) and len(parts) == 1 and isinstance(parts[0], dict) and "$ref" in parts[0] and not any(schema.get("properties", {}).values()):
            # One reference with more beside it (OpenAPI 3.1's $ref siblings, readOnly among them; 3.0's nullable
            # reference): converted as what it names, its model or (a date, a typed list...) its definition.
            name = parts[0]["$ref"][len(REF_PREFIX) :].removesuffix(PART_SUFFIX)
            model = self.models._models.get(name)
            if model is not None:
                return model._wrap
            if name in self.api.definitions:
                return self.converter({"$ref": REF_PREFIX + name})
        if "anyOf" in schema:
            branches = [b for b in schema["anyOf"] if b != {"type": "null"}]
            return self.converter(branches[0]) if len(branches) == 1 else _identity
        types = schema.get("type")
        kind = next((t for t in types if t != "null"), None) if isinstance(types, list) else types
        if kind == "string":
            fmt = schema.get("format")
            if fmt == "date":
                return dt.date.fromisoformat
            if fmt == "date-time":
                return parse_datetime
            return _identity
        if kind == "array" and isinstance(schema.get("items"), dict):
            item = self.converter(schema["items"])
            if item is _identity:
                return _identity
            return lambda values: WireList(values, item)
        if (kind == "object" or kind is None) and isinstance(schema.get("additionalProperties"), dict) and "properties" not in schema:
            item = self.converter(schema["additionalProperties"])
            if item is _identity:
                return _identity
            return lambda values: WireDict(values, item)
        if kind in (None, "object") and "properties" in schema:
            return self.inline_model(schema)
        return _identity

    def _dispatch_converter(self, dispatch: dict[str, Any]) -> Converter:
        base = self.models._models.get(dispatch.get("base") or "")
        if base is not None:
            return base._wrap  # a PolymorphicModel: it picks the subtype itself
        # A discriminated oneOf written inline: no model of its own, only its alternatives'.
        prop = dispatch["propertyName"]
        table = {value: self.models._models[target]._wrap for value, target in dispatch["mapping"].items() if target in self.models._models}

        def convert(data: Any) -> Any:
            wrap = table.get(data.get(prop)) if isinstance(data, dict) and isinstance(data.get(prop), str) else None
            return data if wrap is None else wrap(data)

        return convert

    def inline_model(self, schema: dict[str, Any], name: str = "InlineObject") -> Converter:
        """A model class for an object schema written inline rather than in definitions."""
        cls: type[Model] = type(name, (Model,), {"__slots__": (), "_name": name, "_api": self.api.name, "_schema": schema})
        properties = self._properties(schema, set())
        cls._converters = {prop: self.converter(sub) for prop, sub in properties.items()}
        cls._attributes = {_attribute(prop): prop for prop in properties if _attribute(prop) != prop}
        cls._nullable = frozenset(prop for prop, sub in properties.items() if is_nullable(sub))
        checker = Checker(schema, self.api.definitions)
        cls._validate = checker.problems
        return cls._wrap


def _attribute(prop: str) -> str:
    return python_name(prop)


def _import(dotted: str, api: Api, definition: str) -> Any:
    try:
        return import_object(dotted)
    except DottedPathError as exc:
        raise SpecError(api.file, f"/definitions/{escape(definition)}/x-parent", f"cannot import '{dotted}': {exc.reason}") from exc
