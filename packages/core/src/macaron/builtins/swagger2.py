"""Built-in ``load_spec``: Swagger 2.0 files, YAML or JSON, into macaron's view of an API.

The document is checked against the Swagger 2.0 schema that swagger-spec-validator
ships, compiled with jsonschema-rs (swagger-spec-validator's own ``validate_spec``
takes about 3 s on 2,000 operations; this takes milliseconds), then against the
rules that schema cannot express: resolvable ``$ref``, declared path parameters,
one body, unique operation ids and handler-ready names.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from macaron.config import Config
from macaron.hookspecs import hookimpl
from macaron.models import copy_wire
from macaron.spec import DRAFT4, POLYMORPHIC_SUFFIX, Api, Definitions, Operation, Parameter, RawBody, Response, SpecError, python_name
from macaron.validation import compile_schema, dispatch_schema

# libyaml's loader parses large specs about ten times faster than the pure Python one.
_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SpecLoader(_BASE_LOADER):  # type: ignore[misc,valid-type]
    """YAML as JSON sees it: ``example: 2024-01-01`` is a string, not a datetime.date no schema can hold."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BASE_LOADER.yaml_implicit_resolvers.items()
}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
PARAMETER_SCHEMA_KEYS = (
    "type", "format", "items", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems", "multipleOf",
)  # fmt: skip
INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
JSON_MIME = "application/json"
FORM_MIMES = ("multipart/form-data", "application/x-www-form-urlencoded")


def media_type(mime: str) -> str:
    """A media type without its parameters, lower case: ``Text/Plain; charset=utf-8`` -> ``text/plain``."""
    return mime.split(";", 1)[0].strip().lower()


def is_json(mime: str) -> bool:
    base = media_type(mime)
    return base == JSON_MIME or base.endswith("+json")


def is_form(mime: str) -> bool:
    return media_type(mime) in FORM_MIMES


def raw_body(mime: str, schema: dict[str, Any]) -> RawBody:
    """A body of a type that is neither JSON nor a form: text/* is read as text, anything else as bytes."""
    base = media_type(mime)
    return RawBody(base, base.startswith("text/"), schema)


@hookimpl(trylast=True)
def load_spec(path: Path, config: Config) -> Api | None:
    document = read_document(path)
    if not isinstance(document, dict) or str(document.get("swagger")) != "2.0":
        return None
    return Swagger2Loader(path, document).load()


def read_document(path: Path) -> Any:
    """Parse a YAML or JSON file; YAML's integer keys (``200:``) become strings, as in JSON."""
    resolved = Path(path).resolve()
    try:
        version = resolved.stat().st_mtime_ns  # an edited file is read again by the next create_app
    except OSError:
        version = -1
    return _read_document(resolved, version)


@cache
def _read_document(path: Path, version: int) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(path, "/", f"cannot read the file: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_SpecLoader)
    except json.JSONDecodeError as exc:
        raise SpecError(path, "/", f"not valid JSON: {exc.msg}", line=(exc.lineno, exc.colno)) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # PyYAML's own text names the stream ("<unicode string>"), not the file: keep only what went wrong.
        context = exc.context
        if context and exc.context_mark and mark and exc.context_mark.line != mark.line:
            context += f" at line {exc.context_mark.line + 1}"
        problem = "; ".join(part for part in (context, exc.problem) if part)
        raise SpecError(path, "/", f"not valid YAML: {problem}", line=(mark.line + 1, mark.column + 1) if mark else None) from exc
    except (ValueError, yaml.YAMLError) as exc:
        raise SpecError(path, "/", f"not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from exc
    return _string_keys(data)


def _string_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _string_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_string_keys(item) for item in value]
    return value


@cache
def _swagger_schema_validator() -> jsonschema_rs.Validator:
    # Found without importing the package: its import pulls in jsonschema and its format
    # checkers, which costs seconds of start-up for one JSON file.
    found = importlib.util.find_spec("swagger_spec_validator")
    if found is None or found.origin is None:
        raise RuntimeError("swagger-spec-validator is not installed (macaron-core depends on it)")
    schema_file = Path(found.origin).parent / "schemas" / "v2.0" / "schema.json"
    return jsonschema_rs.Draft4Validator(json.loads(schema_file.read_text()))


def escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def pointer_of(tokens: list[str | int]) -> str:
    return "/" + "/".join(escape_pointer(str(token)) for token in tokens) if tokens else "/"


REF_PREFIX = "#/definitions/"


@dataclass
class Discriminator:
    """A discriminator as the spec declares it, its mapping resolved to definition names."""

    schema: dict[str, Any]  # the (converted) schema that declares it
    definition: str | None  # that schema's name, when it is a definition
    prop: str
    mapping: dict[str, tuple[str, Path, str]]  # explicit value -> (definition, file and pointer of the entry)
    alternatives: list[str] | None  # the definitions of its oneOf/anyOf; None for a base that subtypes extend with allOf
    file: Path
    at: str  # pointer of the discriminator keyword
    operation: str | None

    @property
    def label(self) -> str:
        return f"'{self.definition}'" if self.definition else "this schema"


def _extends(schema: dict[str, Any]) -> list[str]:
    """The definitions a definition extends: the ``$ref`` items of its own ``allOf``."""
    return [part["$ref"][len(REF_PREFIX) :] for part in schema.get("allOf", ()) if isinstance(part, dict) and str(part.get("$ref", "")).startswith(REF_PREFIX)]


class Swagger2Loader:
    FORMAT = "swagger-2.0"
    TITLE = "Swagger 2.0"
    LOCATIONS = "body, header, formData, query or path"
    DEFINITIONS_POINTER = "/definitions"  # where the document keeps its named schemas
    DIALECT = DRAFT4  # the JSON Schema dialect of its schemas, which the engine compiles them in

    def __init__(self, path: Path, document: dict[str, Any]) -> None:
        self.path = Path(path).resolve()
        self.document = document
        self.definitions = Definitions(dialect=self.DIALECT)
        self._definition_origins: dict[str, tuple[Path, str]] = {}
        self._definition_pointers: dict[str, tuple[Path, str]] = {}  # definitions not in DEFINITIONS_POINTER (3.1's $defs)
        self._inlining: set[tuple[Path, str]] = set()  # the non-definition schemas being inlined, against recursion
        self.includes: dict[Path, None] = {}
        # Every converted schema with a discriminator: resolved once all definitions are known.
        self._discriminated: list[tuple[dict[str, Any], Path, str, str | None]] = []

    # -- validation ------------------------------------------------------------

    def _check_schema(self) -> None:
        validator = self._schema_validator()
        if validator.is_valid(self.document):
            return
        leaves = [leaf for error in validator.iter_errors(self.document) for leaf in leaf_errors(error)]
        best = max(leaves, key=lambda e: len(e.instance_path))  # max keeps the first of the deepest
        tokens = list(best.instance_path)
        message = error_message(best, self.LOCATIONS)
        raise SpecError(self.path, pointer_of(tokens), f"not a valid {self.TITLE} document: {message}", _operation_at(self.document, tokens))

    def _schema_validator(self) -> jsonschema_rs.Validator:
        return _swagger_schema_validator()

    # -- references ------------------------------------------------------------

    def _resolve(self, ref: str, base: Path, at: str, operation: str | None) -> tuple[Any, Path, str]:
        """The value a ``$ref`` points at, with the file and pointer it lives at."""
        file_part, _, fragment = ref.partition("#")
        target = (base.parent / file_part).resolve() if file_part else base
        if file_part and not target.exists():
            raise SpecError(base, at, f"$ref '{ref}': no such file {target}", operation)
        if target != self.path:
            self.includes[target] = None
        document = read_document(target) if target != self.path else self.document
        value: Any = document
        for token in [t for t in fragment.split("/") if t]:
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(value, dict) and token in value:
                value = value[token]
            elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
                value = value[int(token)]
            else:
                raise SpecError(base, at, f"$ref '{ref}' cannot be resolved", operation)
        return value, target, fragment

    def _dereferenced(self, raw: Any, file: Path, at: str, operation: str | None) -> tuple[Any, Path, str]:
        """A parameter, response... that may be a ``$ref``, with the file and pointer it lives at."""
        if isinstance(raw, dict) and "$ref" in raw:
            value, file, fragment = self._resolve(raw["$ref"], file, at, operation)
            return value, file, fragment or at
        return raw, file, at

    def _import_definition(self, name: str, file: Path, operation: str | None, at: str) -> str:
        origin = self._definition_origins.get(name)
        if origin is not None and origin != (file, name):
            raise SpecError(file, at, f"definition '{name}' is defined in both {origin[0]} and {file}", operation)
        if origin is None:
            self._definition_origins[name] = (file, name)
            # Recorded before converting, so a recursive definition refers to itself and stops.
            pointer = f"{self.DEFINITIONS_POINTER}/{escape_pointer(name)}"
            raw, _, _ = self._resolve(f"#{pointer}", file, at, operation)
            self.definitions[name] = self.schema(raw, file, pointer, operation)
        return f"#/definitions/{name}"

    # -- schemas ---------------------------------------------------------------

    def schema(self, raw: Any, file: Path, at: str, operation: str | None = None) -> dict[str, Any]:
        """A Swagger 2.0 schema as macaron's JSON Schema: references into definitions, nullability as types."""
        if not isinstance(raw, dict):
            raise SpecError(file, at, "a schema must be a mapping", operation)
        if "$ref" in raw:
            converted = self._reference(raw["$ref"], file, at, operation)
            if raw.get("x-nullable"):
                return {"anyOf": [converted, {"type": "null"}]}
            return converted
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "properties":
                out[key] = {name: self.schema(sub, file, f"{at}/properties/{escape_pointer(name)}", operation) for name, sub in value.items()}
            elif key == "items" and isinstance(value, dict):
                out[key] = self.schema(value, file, f"{at}/items", operation)
            elif key == "additionalProperties" and isinstance(value, dict):
                out[key] = self.schema(value, file, f"{at}/additionalProperties", operation)
            elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
                out[key] = [self.schema(sub, file, f"{at}/{key}/{i}", operation) for i, sub in enumerate(value)]
            elif key == "not" and isinstance(value, dict):
                out[key] = self.schema(value, file, f"{at}/not", operation)
            elif key == "discriminator":
                out["x-discriminator"] = value
                self._discriminated.append((out, file, at, operation))
            else:
                out[key] = value
        return self._finish(raw, out)

    def _reference(self, ref: str, file: Path, at: str, operation: str | None) -> dict[str, Any]:
        """A schema ``$ref``: a reference to a definition (imported once), or the schema it points to, inlined."""
        target, target_file, fragment = self._resolve_schema_ref(ref, file, at, operation)
        parts = [t for t in fragment.split("/") if t]
        if "/" + "/".join(parts[:-1]) == self.DEFINITIONS_POINTER and parts:
            return {"$ref": self._import_definition(parts[-1], target_file, operation, at)}
        local = self._local_definition(parts, target_file, fragment, operation, at)
        if local is not None:
            return {"$ref": REF_PREFIX + local}
        key = (target_file, fragment)
        if key in self._inlining:
            raise SpecError(file, at, f"$ref '{ref}' leads back to the schema it is in: a recursive schema must be a named one ({self.DEFINITIONS_POINTER[1:]})", operation)
        self._inlining.add(key)
        try:
            return self.schema(target, target_file, fragment or "/", operation)
        finally:
            self._inlining.discard(key)

    def _resolve_schema_ref(self, ref: str, file: Path, at: str, operation: str | None) -> tuple[Any, Path, str]:
        return self._resolve(ref, file, at, operation)

    def _local_definition(self, parts: list[str], file: Path, fragment: str, operation: str | None, at: str) -> str | None:
        """The definition a reference into a schema's own definitions becomes (OpenAPI 3.1's ``$defs``); None: inline it."""
        return None

    def _finish(self, raw: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        """What every converted schema gets: the bounds of int32/int64, no ``file`` type, x-nullable as a type."""
        fmt = out.get("format")
        types = out.get("type")
        if (types == "integer" or (isinstance(types, list) and "integer" in types)) and fmt in INT_BOUNDS:
            low, high = INT_BOUNDS[fmt]
            out["minimum"] = max(out.get("minimum", low), low)
            out["maximum"] = min(out.get("maximum", high), high)
        if out.get("type") == "file":
            out.pop("type")
        if raw.get("x-nullable") and "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"] if "null" not in types else types
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        return out

    # -- operations ------------------------------------------------------------

    def _parameter(self, raw: dict[str, Any], file: Path, at: str, operation: str) -> Parameter:
        raw, file, at = self._dereferenced(raw, file, at, operation)
        location = raw["in"]
        name = raw["name"]
        if location == "body":
            schema = self.schema(raw.get("schema", {}), file, f"{at}/schema", operation)
            return Parameter(name, "body", "body", bool(raw.get("required")), schema)
        schema = {key: raw[key] for key in PARAMETER_SCHEMA_KEYS if key in raw}
        is_file = raw.get("type") == "file"
        schema = self.schema(schema, file, at, operation)
        if raw.get("x-nullable") and "type" in schema:
            schema["type"] = [schema["type"], "null"]
        collection_format = raw.get("collectionFormat", "csv") if raw.get("type") == "array" else None
        if raw.get("type") == "array" and (raw.get("items") or {}).get("type") == "array":
            raise SpecError(file, f"{at}/items", f"{location} parameter '{name}' is an array of arrays: macaron reads one level of collectionFormat", operation)
        return Parameter(
            name=name,
            location=location,
            python_name=python_name(name, lower=location == "header"),
            required=bool(raw.get("required")) or location == "path",
            schema=schema,
            collection_format=collection_format,
            default=raw.get("default"),
            has_default="default" in raw,
            is_file=is_file,
        )

    def _operation(self, path: str, method: str, raw: dict[str, Any], shared: list[Any], api: str, base_path: str) -> Operation | None:
        pointer = f"/paths/{escape_pointer(path)}/{method}"
        if raw.get("x-no-bind-server"):
            return None
        name = raw.get("operationId") or f"{method.upper()} {path}"
        handler = raw.get("x-bind-server")
        if handler is None and raw.get("operationId") and "." in raw["operationId"]:
            handler = raw["operationId"]
        if not handler:
            raise SpecError(self.path, pointer, "no handler: add 'x-bind-server: package.module.function' (or a dotted operationId)", name)
        decorators = raw.get("x-decorate-server") or []
        if isinstance(decorators, str):
            decorators = [decorators]

        parameters, consumes = self._operation_parameters(path, pointer, shared, raw, name)
        self._check_parameters(path, parameters, pointer, name)
        responses, produces = self._responses(raw, pointer, name)

        extensions = {key: value for key, value in raw.items() if key.startswith("x-")}
        full_path = (base_path.rstrip("/") + path) if base_path not in ("", "/") else path
        return Operation(
            api=api,
            method=method,
            path=full_path,
            operation_id=raw.get("operationId"),
            handler=handler,
            decorators=list(decorators),
            parameters=parameters,
            responses=responses,
            consumes=consumes,
            produces=produces,
            security=list(raw.get("security", self.document.get("security")) or []),
            extensions=extensions,
            file=self.path,
            pointer=pointer,
            summary=raw.get("summary", ""),
            tags=list(raw.get("tags") or []),
            security_definitions=self._security_definitions(),
            security_pointer=self.SECURITY_POINTER,
        )

    def _merged_parameters(self, path: str, pointer: str, shared: list[Any], raw: dict[str, Any], name: str) -> list[Parameter]:
        """The path item's parameters overridden by the operation's own (same location and name)."""
        by_key: dict[tuple[str, str], Parameter] = {}
        for source, items in (("/paths/" + escape_pointer(path) + "/parameters", shared), (pointer + "/parameters", raw.get("parameters") or [])):
            for index, item in enumerate(items):
                parameter = self._parameter(item, self.path, f"{source}/{index}", name)
                by_key[(parameter.location, parameter.name)] = parameter
        return list(by_key.values())

    def _operation_parameters(self, path: str, pointer: str, shared: list[Any], raw: dict[str, Any], name: str) -> tuple[list[Parameter], list[str]]:
        """The operation's parameters and the media types its requests may have."""
        consumes = list(raw.get("consumes") or self.document.get("consumes") or [JSON_MIME])
        parameters = self._merged_parameters(path, pointer, shared, raw, name)
        body = next((p for p in parameters if p.location == "body"), None)
        # A string body consumed only as other types than JSON and forms (text/plain, image/png): its text or bytes.
        if body is not None and consumes and not any(is_json(mime) or is_form(mime) for mime in consumes) and body.schema.get("type") == "string":
            body.raw_bodies = [raw_body(mime, body.schema) for mime in consumes]
            body.json_body = False
            body.schema = {}
        return parameters, consumes

    SECURITY_POINTER = "/securityDefinitions"

    def _security_definitions(self) -> dict[str, dict[str, Any]]:
        return dict(self.document.get("securityDefinitions") or {})

    def _base_path(self) -> str:
        return str(self.document.get("basePath") or "/")

    def _responses(self, raw: dict[str, Any], pointer: str, name: str) -> tuple[dict[int | str, Response], list[str]]:
        """The operation's responses by status and the media types it produces."""
        responses: dict[int | str, Response] = {}
        for code, response in (raw.get("responses") or {}).items():
            # The response's own $refs are relative to the file it lives in.
            response, file, at = self._dereferenced(response, self.path, f"{pointer}/responses/{code}", name)
            schema = self.schema(response["schema"], file, f"{at}/schema", name) if "schema" in response else None
            key: int | str = int(code) if code.isdigit() else code
            responses[key] = Response(key, schema, response.get("description", ""))
        return responses, list(raw.get("produces") or self.document.get("produces") or [JSON_MIME])

    def _check_parameters(self, path: str, parameters: list[Parameter], pointer: str, operation: str) -> None:
        placeholders = re.findall(r"{([^}/]+)}", path)
        declared = {p.name for p in parameters if p.location == "path"}
        for placeholder in placeholders:
            if placeholder not in declared:
                raise SpecError(self.path, pointer, f"path parameter '{placeholder}' is in the path but not declared", operation)
        for name in declared - set(placeholders):
            raise SpecError(self.path, pointer, f"path parameter '{name}' is declared but not in the path", operation)
        bodies = [p for p in parameters if p.location == "body"]
        if len(bodies) > 1:
            raise SpecError(self.path, pointer, "more than one body parameter", operation)
        if bodies and any(p.location == "formData" for p in parameters):
            raise SpecError(self.path, pointer, "body and formData parameters cannot be mixed", operation)
        seen: dict[str, str] = {}
        for parameter in parameters:
            if parameter.location == "body":
                continue
            other = seen.get(parameter.python_name)
            if other is not None:
                raise SpecError(self.path, pointer, f"parameters '{other}' and '{parameter.name}' both become the argument '{parameter.python_name}'", operation)
            seen[parameter.python_name] = parameter.name

    def load(self) -> Api:
        self._check_schema()
        document = self.document
        api_name = self.path.stem
        base_path = self._base_path()
        named: Any = document
        for token in [t for t in self.DEFINITIONS_POINTER.split("/") if t]:
            named = (named or {}).get(token)
        for name in named or {}:
            self._import_definition(name, self.path, None, f"{self.DEFINITIONS_POINTER}/{escape_pointer(name)}")
        operations: list[Operation] = []
        operation_ids: dict[str, str] = {}
        for path, item in (document.get("paths") or {}).items():
            shared = item.get("parameters") or []
            for method in METHODS:
                if method not in item:
                    continue
                operation = self._operation(path, method, item[method], shared, api_name, base_path)
                if operation is None:
                    continue
                if operation.operation_id:
                    if operation.operation_id in operation_ids:
                        raise operation.error(f"operationId '{operation.operation_id}' is also used by {operation_ids[operation.operation_id]}")
                    operation_ids[operation.operation_id] = operation.pointer
                operations.append(operation)
        self._resolve_discriminators(operations)
        info = document.get("info") or {}
        return Api(
            name=api_name,
            file=self.path,
            version=str(info.get("version", "")),
            title=str(info.get("title", api_name)),
            base_path=base_path,
            operations=operations,
            definitions=self.definitions,
            security_definitions=self._security_definitions(),
            document=document,
            format=self.FORMAT,
            includes=list(self.includes),
        )


    # -- discriminators (polymorphism) -------------------------------------------

    DISCRIMINATOR_REQUIRED = True  # Swagger 2.0: the property "MUST be in the required property list"

    def _discriminator(self, schema: dict[str, Any], definition: str | None, file: Path, at: str, operation: str | None) -> Discriminator | None:
        """Swagger 2.0: the discriminator names a property whose values are the definition's name and its subtypes' names."""
        if definition is None:
            return None  # nothing can extend an inline schema: its discriminator only documents it
        return Discriminator(schema, definition, str(schema["x-discriminator"]), {}, None, file, f"{at}/discriminator", operation)

    def _definition_at(self, name: str) -> tuple[Path, str]:
        if name in self._definition_pointers:
            return self._definition_pointers[name]
        file = self._definition_origins.get(name, (self.path, name))[0]
        return file, f"{self.DEFINITIONS_POINTER}/{escape_pointer(name)}"

    def _members(self, schema: dict[str, Any], seen: frozenset[str] = frozenset()) -> tuple[dict[str, Any], set[str]]:
        """The properties and required names of an object schema, its allOf parts' included."""
        if "$ref" in schema:
            name = str(schema["$ref"])[len(REF_PREFIX) :]
            return self._members(self.definitions.get(name, {}), seen | {name}) if name not in seen else ({}, set())
        properties: dict[str, Any] = {}
        required: set[str] = set()
        for part in schema.get("allOf", ()):
            more, needed = self._members(part, seen) if isinstance(part, dict) else ({}, set())
            properties.update(more)
            required |= needed
        properties.update(schema.get("properties") or {})
        required |= set(schema.get("required") or [])
        return properties, required

    def _property_schema(self, schema: dict[str, Any], prop: str) -> dict[str, Any] | None:
        """The schema of property ``prop`` of an object schema, a top ``$ref`` followed."""
        found = self._members(schema)[0].get(prop)
        seen: set[str] = set()
        while isinstance(found, dict) and "$ref" in found and found["$ref"] not in seen:
            seen.add(found["$ref"])
            found = self.definitions.get(str(found["$ref"])[len(REF_PREFIX) :], {})
        return found if isinstance(found, dict) else None

    def _accepts(self, definition: str, prop: str, value: str) -> bool:
        """Whether the definition's own discriminator property takes ``value`` (an enum may leave an abstract base out)."""
        schema = self._property_schema(self.definitions.get(definition, {}), prop)
        if not schema or '"$ref"' in json.dumps(schema):
            return True  # nested references: the request's validation decides
        return bool(compile_schema(schema, {}, self.definitions.dialect).is_valid(value))

    def _check_property(self, disc: Discriminator, owners: list[str | None]) -> None:
        """The discriminator is a string property of every schema in ``owners`` (None: the discriminator's own schema)."""
        for owner in owners:
            schema = disc.schema if owner is None else self.definitions[owner]
            properties, required = self._members(schema)
            whose = disc.label if owner is None else f"'{owner}', one of the alternatives of {disc.label},"
            if disc.prop not in properties:
                raise SpecError(disc.file, disc.at, f"the discriminator '{disc.prop}' of {whose} is not one of its properties", disc.operation)
            if self.DISCRIMINATOR_REQUIRED and disc.prop not in required:
                raise SpecError(disc.file, disc.at, f"the discriminator '{disc.prop}' of {whose} must be in its 'required' list ({self.TITLE} requires it)", disc.operation)
            types = (self._property_schema(schema, disc.prop) or {}).get("type")
            if types is not None and "string" not in (types if isinstance(types, list) else [types]):
                raise SpecError(disc.file, disc.at, f"the discriminator '{disc.prop}' of {whose} must be a string property, not {json.dumps(types)}", disc.operation)

    def _values(self, disc: Discriminator, candidates: list[str], outside: str) -> dict[str, str]:
        """Discriminator value -> definition: the explicit mapping, then each other candidate by its own name."""
        values: dict[str, str] = {}
        for value, (target, file, at) in disc.mapping.items():
            if target not in candidates:
                raise SpecError(file, at, f"the discriminator mapping '{value}' of {disc.label} points to '{target}', which {outside}", disc.operation)
            if not self._accepts(target, disc.prop, value):
                raise SpecError(file, at, f"the discriminator mapping '{value}' of {disc.label} points to '{target}', whose '{disc.prop}' does not accept {json.dumps(value)}", disc.operation)
            values[value] = target
        mapped = set(values.values())
        for name in candidates:
            if name not in mapped and name not in values and self._accepts(name, disc.prop, name):
                values[name] = name
        return values

    def _resolve_discriminators(self, operations: list[Operation]) -> None:
        """Every discriminator as a dispatch definition, and the references it concerns made polymorphic (see macaron.spec)."""
        found: list[Discriminator] = []
        index = 0
        while index < len(self._discriminated):  # a mapping may import definitions with discriminators of their own
            schema, file, at, operation = self._discriminated[index]
            index += 1
            definition = next((name for name, value in self.definitions.items() if value is schema), None)
            disc = self._discriminator(schema, definition, file, at, operation)
            if disc is not None:
                found.append(disc)
        if not found:
            return
        parents = {name: _extends(schema) for name, schema in self.definitions.items()}
        children: dict[str, list[str]] = {}
        for name, extended in parents.items():
            for base in extended:
                children.setdefault(base, []).append(name)

        def related(name: str, links: dict[str, list[str]]) -> set[str]:
            seen, pending = {name}, [name]
            while pending:
                for other in links.get(pending.pop(), ()):
                    if other not in seen:
                        seen.add(other)
                        pending.append(other)
            return seen

        def subtree(name: str) -> list[str]:  # the definition and every one extending it, in the spec's order
            below = related(name, children)
            return [name, *(other for other in self.definitions if other in below and other != name)]

        # Hierarchies: a base with a discriminator and every definition extending it (allOf), at any depth.
        bases = {d.definition: d for d in found if d.alternatives is None and d.definition is not None}
        roots = [d for name, d in bases.items() if not (related(name, parents) - {name}) & bases.keys()]
        family: dict[str, str] = {}
        for root in roots:
            for node in subtree(str(root.definition)):
                other = family.setdefault(node, str(root.definition))
                if other != root.definition:
                    file, at = self._definition_at(node)
                    raise SpecError(file, at, f"'{node}' extends both '{other}' and '{root.definition}', which have discriminators: a schema belongs to one hierarchy")
        by_root = {str(d.definition): d for d in roots}
        for name, disc in bases.items():
            root = by_root[family[name]]
            if disc is root:
                continue
            # A discriminator further down refines the hierarchy's: same property, more mapping entries.
            if disc.prop != root.prop:
                raise SpecError(disc.file, disc.at, f"the discriminator '{disc.prop}' of '{name}' is not '{root.prop}', the one it inherits from '{root.definition}': a hierarchy has one discriminator property", disc.operation)
            for value, entry in disc.mapping.items():
                if root.mapping.setdefault(value, entry)[0] != entry[0]:
                    raise SpecError(entry[1], entry[2], f"the discriminator value '{value}' maps to '{entry[0]}' here but to '{root.mapping[value][0]}' in '{root.definition}'", disc.operation)

        dispatches: dict[str, dict[str, Any]] = {}  # definition -> its dispatch definition (name:any)
        for root in roots:
            nodes = subtree(str(root.definition))
            self._check_property(root, [None])
            values = self._values(root, nodes, f"does not extend '{root.definition}' (allOf)")
            for node in nodes:
                below = set(subtree(node))
                selected = {value: target for value, target in values.items() if target in below}
                if not selected:
                    file, at = self._definition_at(node)
                    raise SpecError(file, at, f"no value of the discriminator '{root.prop}' selects '{node}' or a schema extending it (its '{root.prop}' accepts none of them)")
                extends = [base for base in parents[node] if family.get(base) == root.definition]
                dispatches[node] = dispatch_schema(root.prop, selected, node, extends)

        # A oneOf/anyOf with a discriminator: the value picks the one alternative to check.
        choices: list[tuple[Discriminator, dict[str, str]]] = []
        for disc in found:
            if disc.alternatives is None:
                continue
            for alternative in disc.alternatives:
                if disc.definition is not None and disc.definition in related(alternative, parents):
                    file, at = self._definition_at(alternative)
                    raise SpecError(file, at, f"'{alternative}' extends '{disc.definition}', of which it is an alternative: it would contain itself (put the shared properties in a base both extend)")
            owners: list[str | None] = [None] if disc.prop in (disc.schema.get("properties") or {}) else list(disc.alternatives)
            self._check_property(disc, owners)
            values = self._values(disc, disc.alternatives, "is not one of its oneOf/anyOf alternatives")
            if not values:
                raise SpecError(disc.file, disc.at, f"no value of the discriminator '{disc.prop}' selects any alternative of {disc.label}", disc.operation)
            choices.append((disc, values))
            if disc.definition is not None:
                dispatches[disc.definition] = {}  # made below, once its sibling keywords' references are rewritten

        # Where a schema is named, any subtype may appear; a subtype's own allOf names its base's structure.
        def rewrite(node: Any) -> None:
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref.startswith(REF_PREFIX) and ref[len(REF_PREFIX) :] in dispatches:
                    node["$ref"] = ref + POLYMORPHIC_SUFFIX
                for value in node.values():
                    rewrite(value)
            elif isinstance(node, list):
                for value in node:
                    rewrite(value)

        for served in operations:
            for parameter in served.parameters:
                rewrite(parameter.schema)
            for response in served.responses.values():
                rewrite(response.schema)
        for schema in self.definitions.values():
            inherited = [(part, part["$ref"]) for part in schema.get("allOf", ()) if isinstance(part, dict) and "$ref" in part]
            rewrite(schema)
            for part, ref in inherited:
                part["$ref"] = ref
        for disc, values in choices:
            siblings = {key: copy_wire(value) for key, value in disc.schema.items() if key not in ("oneOf", "anyOf") and not key.startswith("x-")}
            dispatch = dispatch_schema(disc.prop, values, disc.definition, [], siblings)
            if disc.definition is not None:
                dispatches[disc.definition] = dispatch
            else:
                disc.schema.clear()
                disc.schema.update(dispatch)
        for name, dispatch in dispatches.items():  # after the rewriting: a dispatch selects definitions, not their polymorphic forms
            self.definitions[name + POLYMORPHIC_SUFFIX] = dispatch


def _operation_at(document: dict[str, Any], tokens: list[str | int]) -> str | None:
    if len(tokens) >= 3 and tokens[0] == "paths" and tokens[2] in METHODS:
        operation = document["paths"][tokens[1]][tokens[2]]
        if isinstance(operation, dict) and operation.get("operationId"):
            return str(operation["operationId"])
        return f"{str(tokens[2]).upper()} {tokens[1]}"
    return None


def leaf_errors(error: Any) -> list[Any]:
    """The errors behind a oneOf/anyOf failure, from the alternative the author most likely meant.

    The Swagger schema says "a parameter is one of body, header, query...; or a $ref", so
    a typo in a query parameter fails every alternative; the useful error is the one
    from the query alternative, not "is not valid under any of the schemas".
    """
    branches = getattr(error.kind, "context", None)
    if not branches:
        return [error]
    best: tuple[int, int, list[Any]] | None = None
    for branch in branches:
        found = [leaf for sub in branch for leaf in leaf_errors(sub)]
        # An alternative for another kind of thing: "in" is not its location, or it is the $ref form.
        elsewhere = int(any(_is_other_alternative(leaf) for leaf in found))
        if best is None or (elsewhere, len(found)) < best[:2]:
            best = (elsewhere, len(found), found)
    return best[2] if best and best[2] else [error]


def _is_other_alternative(error: Any) -> bool:
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        return bool(kind.property == "$ref")
    path = list(error.instance_path)
    return bool(path) and path[-1] == "in" and isinstance(kind, jsonschema_rs.ValidationErrorKind.Enum)


def error_message(error: Any, locations: str) -> str:
    message = str(error.message)
    if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Enum):
        path = list(error.instance_path)
        if path and path[-1] == "in":
            message = f"{json.dumps(error.instance)} is not a parameter location ({locations})"
        else:
            message = f"{json.dumps(error.instance)} is not one of {', '.join(json.dumps(option) for option in error.kind.options)}"
    if len(message) > 300:
        message = message[:300] + "..."
    return message

