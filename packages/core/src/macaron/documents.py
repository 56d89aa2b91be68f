"""A spec as a document (Swagger 2.0 or OpenAPI 3), for tools that read the spec itself.

:func:`bundle` makes one self-contained document of a spec and the files it ``$ref``s
(what ``/docs`` shows); :func:`close_document` closes its objects exactly as the engine
closes them (:func:`macaron.closing.close_objects`), for a tool that must generate what
the server accepts (the contract run of macaron-unit); :func:`document_schemas` walks
every schema a document holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from macaron.closing import close_objects, is_part_copy
from macaron.models import copy_wire
from macaron.spec import DRAFT4, DRAFT2020, Definitions
from macaron.validation import REF_PREFIX

# A definition name in a document may not hold ':' (OpenAPI 3 component names): the open copy
# that the engine names <Name>:part is <Name>__part in a document.
DOCUMENT_PART_SUFFIX = "__part"
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_VALUES = ("items", "not", "additionalProperties", "additionalItems", "contains", "propertyNames", "if", "then", "else", "unevaluatedItems", "unevaluatedProperties")
SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def bundle(document: dict[str, Any], file: Path) -> dict[str, Any]:
    """The document with every ``$ref`` into another file replaced by a local one.

    A referenced definition (``other.yaml#/definitions/Name``, or OpenAPI 3's
    ``#/components/<kind>/Name``) is copied into the same section of the document;
    any other external value is inlined. Swagger UI could not fetch those files.
    """
    documents: dict[Path, Any] = {file: document}
    imported: dict[tuple[str, ...], Any] = {}
    visiting: set[tuple[Path, str]] = set()

    def resolve(path: Path, fragment: str) -> Any:
        if path not in documents:
            from macaron.builtins.swagger2 import read_document

            documents[path] = read_document(path)
        value = documents[path]
        for token in [t for t in fragment.split("/") if t]:
            token = token.replace("~1", "/").replace("~0", "~")
            value = value[int(token)] if isinstance(value, list) else value[token]
        return value

    def section_of(fragment: str) -> tuple[str, ...] | None:
        tokens = tuple(t for t in fragment.split("/") if t)
        if (len(tokens) == 2 and tokens[0] == "definitions") or (len(tokens) == 3 and tokens[0] == "components"):
            return tokens
        return None

    def walk(value: Any, base: Path) -> Any:
        if isinstance(value, list):
            return [walk(item, base) for item in value]
        if not isinstance(value, dict):
            return value
        ref = value.get("$ref")
        if isinstance(ref, str):
            file_part, _, fragment = ref.partition("#")
            target = (base.parent / file_part).resolve() if file_part else base
            if target != file:
                tokens = section_of(fragment)
                if tokens is not None:
                    if tokens not in imported:
                        imported[tokens] = None  # a recursive definition stops here
                        imported[tokens] = walk(resolve(target, fragment), target)
                    return {"$ref": "#/" + "/".join(tokens)}
                if (target, fragment) in visiting:
                    return value
                visiting.add((target, fragment))
                try:
                    return walk(resolve(target, fragment), target)
                finally:
                    visiting.discard((target, fragment))
        return {key: walk(item, base) for key, item in value.items()}

    result: dict[str, Any] = walk(document, file)
    for tokens, value in imported.items():
        container = result
        for token in tokens[:-1]:
            container[token] = dict(container.get(token) or {})
            container = container[token]
        # The loader already refused two different definitions under one name.
        container.setdefault(tokens[-1], value)
    return result


def close_document(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of a bundled document (local ``$ref``s only) whose objects are closed as the engine closes them.

    The engine's own :func:`~macaron.closing.close_objects` does the closing, on the
    document's definitions (``definitions`` or ``components/schemas``) and the schemas of
    its parameters, bodies and responses; an open copy of an ``allOf`` part is added as
    ``<Name>__part``. An OpenAPI 3.1 document is closed in JSON Schema 2020-12.
    """
    document = copy_wire(document)
    swagger = "swagger" in document
    container: dict[str, Any] = document if swagger else document.get("components") or {}
    definitions: dict[str, Any] = container.get("definitions" if swagger else "schemas") or {}
    prefix = "#/definitions/" if swagger else "#/components/schemas/"
    roots = list(_root_schemas(document, swagger, with_definitions=False))
    dialect = DRAFT2020 if str(document.get("openapi", "")).startswith("3.1") else DRAFT4
    closing = Definitions({name: schema for name, schema in definitions.items() if isinstance(schema, dict)}, dialect=dialect)
    _rewrite_refs([*closing.values(), *roots], prefix, REF_PREFIX)
    close_objects(closing, roots)
    renamed = {name: name[: -len(":part")] + DOCUMENT_PART_SUFFIX if is_part_copy(name) else name for name in closing}
    _rewrite_refs([*closing.values(), *roots], REF_PREFIX, prefix, renamed)
    if closing:
        definitions.update({renamed[name]: schema for name, schema in closing.items()})
        container["definitions" if swagger else "schemas"] = definitions
        if not swagger:
            document["components"] = container
    return document


def _rewrite_refs(schemas: list[Any], old: str, new: str, names: dict[str, str] | None = None) -> None:
    pending = list(schemas)
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(old):
                name = ref[len(old) :]
                node["$ref"] = new + (names.get(name, name) if names is not None else name)
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)


def document_schemas(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every schema of a document, parents first: its definitions, and those of its parameters, bodies and responses."""
    for root in _root_schemas(document, "swagger" in document, with_definitions=True):
        yield from _subschemas(root)


def _subschemas(schema: Any) -> Iterator[dict[str, Any]]:
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


def _root_schemas(document: dict[str, Any], swagger: bool, with_definitions: bool) -> Iterator[dict[str, Any]]:
    """The schemas a document holds outside other schemas: definitions, parameters, bodies, responses."""

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

    sections: dict[str, Any] = document if swagger else document.get("components") or {}
    if with_definitions:
        yield from (s for s in (sections.get("definitions" if swagger else "schemas") or {}).values() if isinstance(s, dict))
    for section in ("parameters", "responses") if swagger else ("parameters", "requestBodies", "responses"):
        for value in (sections.get(section) or {}).values():
            yield from parameter_or_response(value)
    for item in (document.get("paths") or {}).values():
        if isinstance(item, dict):
            yield from operation(item)  # path-level parameters
            for method in METHODS:
                yield from operation(item.get(method))
