"""Compiled validators and their messages, built once at start-up from an Api's schemas.

Validation uses jsonschema-rs: compiled in microseconds, a valid instance checked in
well under a microsecond, and every error reported with its JSON path. The fast
``is_valid`` runs on every request; ``iter_errors`` only once something is wrong.
Schemas are compiled in the dialect of their Api's definitions (see macaron.spec):
draft 4 for Swagger 2.0 and OpenAPI 3.0, 2020-12 for OpenAPI 3.1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jsonschema_rs
import orjson

from macaron.spec import DISPATCH, DRAFT4, DRAFT2020, dialect_of

Problems = list[dict[str, str]]
REF_PREFIX = "#/definitions/"
HIDDEN = "x-hidden"  # marks the schema that refuses a readOnly property in a request, a writeOnly one in a response
HIDDEN_MESSAGES = {
    "readOnly": "is read-only: the server sets it, a request may not send it",
    "writeOnly": "is write-only: a response may not carry it",
}


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


def closure_of(name: str, definitions: dict[str, Any]) -> frozenset[str]:
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
        names |= closure_of(name, definitions)
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


