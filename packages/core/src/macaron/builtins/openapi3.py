"""Built-in ``load_spec``: OpenAPI 3.0 and 3.1 files, YAML or JSON, into macaron's view of an API.

The engine never sees OpenAPI 3: this loader produces what the Swagger 2.0 loader
does (``#/definitions/<Name>`` references, nullability as type lists, parameters in
path/query/header/cookie/body/formData), so it shares that loader's reference
resolution and schema conversion and adds only what differs: ``servers``,
``style``/``explode``, ``requestBody``, response ``content``, ``securitySchemes``
and ``nullable``. OpenAPI 3.0 schemas stay draft 4; 3.1's are JSON Schema 2020-12
and are compiled as such: every validation keyword is enforced, ``$defs`` become
definitions, and a keyword macaron could not enforce stops start-up.

The document is first checked against the OpenAPI 3.0 or 3.1 schema that
openapi-spec-validator ships, compiled with jsonschema-rs (without importing that
package: its import costs seconds).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs

from macaron.builtins.swagger2 import (
    JSON_MIME,
    REF_PREFIX,
    Discriminator,
    Swagger2Loader,
    error_message,
    escape_pointer,
    is_form,
    is_json,
    leaf_errors,
    pointer_of,
    raw_body,
    read_document,
)
from macaron.config import Config
from macaron.hookspecs import hookimpl
from macaron.spec import DRAFT4, DRAFT2020, Api, Definitions, Parameter, Response, SpecError, python_name, schema_shape
from macaron.styles import STYLES

log = logging.getLogger("macaron")

# Header parameters OpenAPI 3 says to ignore: the media types come from requestBody and responses' content.
IGNORED_HEADERS = ("accept", "content-type")
VERSIONS = {"3.0": re.compile(r"^3\.0\.\d+(-.+)?$"), "3.1": re.compile(r"^3\.1\.\d+(-.+)?$")}
# OpenAPI 3 style (and explode) of an array parameter -> Swagger 2.0 collectionFormat.
ARRAY_STYLES = {("form", True): "multi", ("form", False): "csv", ("spaceDelimited", False): "ssv",
                ("pipeDelimited", False): "pipes", ("simple", False): "csv", ("simple", True): "csv"}  # fmt: skip


@hookimpl(trylast=True)
def load_spec(path: Path, config: Config) -> Api | None:
    document = read_document(path)
    if not isinstance(document, dict):
        return None
    declared = str(document.get("openapi", ""))
    for version, pattern in VERSIONS.items():
        if pattern.match(declared):
            return OpenApi3Loader(path, document, version).load()
    return None


@cache
def _openapi_schema_validator(version: str) -> jsonschema_rs.Validator:
    found = importlib.util.find_spec("openapi_spec_validator")
    if found is None or found.origin is None:
        raise RuntimeError("openapi-spec-validator is not installed (macaron-core depends on it)")
    schema_file = Path(found.origin).parent / "resources" / "schemas" / f"v{version}" / "schema.json"
    return jsonschema_rs.validator_for(json.loads(schema_file.read_text()))


@cache
def _meta_validator() -> jsonschema_rs.Validator:
    # The 2020-12 meta-schema ships with jsonschema-rs: OpenAPI 3.1's own schema leaves Schema Objects unchecked.
    return jsonschema_rs.Draft202012Validator({"$ref": DIALECTS[0]}, validate_formats=True)  # "pattern" must be a regex


def _shallow(raw: dict[str, Any]) -> dict[str, Any]:
    """A schema's own keywords, its subschemas reduced to ``{}``: each level is checked once, when it is converted."""
    shallow: dict[str, Any] = {}
    for key, value in raw.items():
        if key in ONE_SCHEMA or key in SCHEMA_OR_BOOLEAN:
            shallow[key] = value if isinstance(value, bool) or not isinstance(value, dict) else {}
        elif key in SCHEMA_LISTS and isinstance(value, list):
            shallow[key] = [sub if not isinstance(sub, dict) else {} for sub in value]
        elif (key in SCHEMA_MAPS or key in ("$defs", "definitions", "dependencies")) and isinstance(value, dict):
            shallow[key] = {name: sub if not isinstance(sub, dict) else {} for name, sub in value.items()}
        else:
            shallow[key] = value
    return shallow


# JSON Schema 2020-12 (OpenAPI 3.1), by what the loader does with each keyword.
ONE_SCHEMA = ("not", "if", "then", "else", "contains", "propertyNames")  # a subschema; true/false as {} / {"not": {}}
SCHEMA_OR_BOOLEAN = ("items", "additionalProperties", "unevaluatedItems", "unevaluatedProperties")  # a boolean kept as is
SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas")
ASSERTIONS = (
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxContains", "minContains",
    "maxProperties", "minProperties", "required", "dependentRequired", "format",
)  # fmt: skip
# Kept as written, validating nothing (JSON Schema's and OpenAPI's annotations; content* are annotations in 2020-12).
ANNOTATIONS = ("title", "description", "default", "examples", "example", "deprecated", "readOnly", "writeOnly", "xml", "externalDocs", "contentEncoding", "contentMediaType")
# Dropped from what is compiled: identifiers and local definitions the loader has already resolved, and comments.
RESOLVED = ("$id", "$anchor", "$dynamicAnchor", "$schema", "$defs", "definitions", "$comment", "contentSchema")
UNSUPPORTED = {
    "$dynamicRef": "'$dynamicRef' is not supported: macaron resolves plain $ref only (write a $ref to the schema meant)",
    "$recursiveRef": "'$recursiveRef' (draft 2019-09) is not supported: macaron resolves plain $ref only",
    "$vocabulary": "'$vocabulary' belongs to meta-schemas, not to the schemas of an API",
}
DIALECTS = ("https://json-schema.org/draft/2020-12/schema", "https://spec.openapis.org/oas/3.1/dialect/base")
# Beside a $ref, these add nothing to validate; readOnly and writeOnly do: they decide which direction the property goes.
SIBLINGS_IGNORED = tuple(key for key in (*ANNOTATIONS, *RESOLVED) if key not in ("readOnly", "writeOnly"))


def _types(schema: dict[str, Any]) -> list[str]:
    found = schema.get("type")
    return [found] if isinstance(found, str) else list(found or [])


class OpenApi3Loader(Swagger2Loader):
    LOCATIONS = "path, query, header or cookie"
    DEFINITIONS_POINTER = "/components/schemas"

    def __init__(self, path: Path, document: dict[str, Any], version: str) -> None:
        super().__init__(path, document)
        self.version = version
        self.FORMAT = f"openapi-{version}"
        self.TITLE = f"OpenAPI {version}"
        self.modern = version != "3.0"  # 3.1: JSON Schema 2020-12
        self.definitions = Definitions(dialect=DRAFT2020 if self.modern else DRAFT4)
        self._hoisted: dict[tuple[Path, str], str] = {}  # (file, pointer of a $defs entry) -> its definition name

    def _schema_validator(self) -> jsonschema_rs.Validator:
        return _openapi_schema_validator(self.version)

    def _check_schema(self) -> None:
        super()._check_schema()
        dialect = self.document.get("jsonSchemaDialect")
        if self.modern and dialect is not None and str(dialect).rstrip("#") not in DIALECTS:
            raise SpecError(self.path, "/jsonSchemaDialect", f"schemas in the dialect {dialect} cannot be served: macaron validates JSON Schema 2020-12 ({DIALECTS[0]})")

    SECURITY_POINTER = "/components/securitySchemes"

    def _security_definitions(self) -> dict[str, dict[str, Any]]:
        return dict((self.document.get("components") or {}).get("securitySchemes") or {})

    def _base_path(self) -> str:
        """The path part of the first server's URL, its variables set to their defaults."""
        servers = self.document.get("servers") or []
        if not servers:
            return "/"
        url = str(servers[0].get("url", "/"))
        for name, variable in (servers[0].get("variables") or {}).items():
            url = url.replace("{" + name + "}", str(variable.get("default", "")))
        if "{" in url:
            raise SpecError(self.path, "/servers/0/url", f"server URL '{url}' uses a variable that 'variables' does not define")
        path = urlsplit(url).path.strip("/")
        return "/" + path if path else "/"

    # -- schemas ---------------------------------------------------------------

    def schema(self, raw: Any, file: Path, at: str, operation: str | None = None) -> dict[str, Any]:
        """An OpenAPI 3 schema in the engine's terms: 3.0's as the Swagger 2.0 loader's (draft 4), 3.1's as JSON Schema 2020-12."""
        if isinstance(raw, bool) and self.modern:
            return {} if raw else {"not": {}}  # a boolean schema where the engine expects a mapping
        if not isinstance(raw, dict):
            return super().schema(raw, file, at, operation)
        nullable = raw.get("nullable") is True
        if "nullable" in raw:
            raw = {key: value for key, value in raw.items() if key != "nullable"}
            if nullable:
                raw["x-nullable"] = True
        out = self._schema_2020(raw, file, at, operation) if self.modern else super().schema(raw, file, at, operation)
        if nullable and "$ref" not in raw:
            out.pop("x-nullable", None)
            if "type" not in out:  # allOf/oneOf... with nullable: null is one more alternative
                out = {"anyOf": [out, {"type": "null"}]}
        return out

    def _schema_2020(self, raw: dict[str, Any], file: Path, at: str, operation: str | None) -> dict[str, Any]:
        """A JSON Schema 2020-12 schema with its references into definitions; what could not be enforced stops start-up."""
        for key, value in raw.items():
            if key.startswith("x-") or key in ("$ref", "discriminator", "dependencies") or key in ONE_SCHEMA or key in SCHEMA_OR_BOOLEAN:
                continue
            if key in SCHEMA_LISTS or key in SCHEMA_MAPS or key in ASSERTIONS or key in ANNOTATIONS or key in RESOLVED:
                if key == "$schema" and str(value).rstrip("#") not in DIALECTS:
                    raise SpecError(file, f"{at}/$schema", f"a schema in the dialect {value} cannot be served: macaron validates JSON Schema 2020-12", operation)
                continue
            reason = UNSUPPORTED.get(key) or (
                f"'{key}' is not a keyword of JSON Schema 2020-12 or OpenAPI 3.1: it would validate nothing"
                f" (check its spelling; an annotation of your own is written x-{key})"
            )
            raise SpecError(file, f"{at}/{escape_pointer(key)}", reason, operation)
        shallow = _shallow(raw)
        if not _meta_validator().is_valid(shallow):
            leaves = [leaf for error in _meta_validator().iter_errors(shallow) for leaf in leaf_errors(error)]
            best = max(leaves, key=lambda e: len(e.instance_path))
            where = pointer_of(list(best.instance_path))
            raise SpecError(file, at.rstrip("/") + (where if where != "/" else ""), f"not a valid JSON Schema 2020-12 schema: {error_message(best, '')}", operation)
        if "$ref" in raw:
            reference = self._reference(raw["$ref"], file, at, operation)
            siblings = {key: value for key, value in raw.items() if key not in ("$ref", "x-nullable") and key not in SIBLINGS_IGNORED and not key.startswith("x-")}
            if siblings:
                # In 2020-12 a $ref applies beside its siblings, as one more part of an allOf.
                composed = self._schema_2020(siblings, file, at, operation)
                composed["allOf"] = [reference, *composed.get("allOf", ())]
                reference = composed
            return {"anyOf": [reference, {"type": "null"}]} if raw.get("x-nullable") else reference
        out: dict[str, Any] = {}
        for key, value in raw.items():
            where = f"{at}/{escape_pointer(key)}"
            if key in ONE_SCHEMA:
                out[key] = self.schema(value, file, where, operation)
            elif key in SCHEMA_OR_BOOLEAN:
                out[key] = value if isinstance(value, bool) else self.schema(value, file, where, operation)
            elif key in SCHEMA_LISTS:
                out[key] = [self.schema(sub, file, f"{where}/{index}", operation) for index, sub in enumerate(value)]
            elif key in SCHEMA_MAPS:
                out[key] = {name: self.schema(sub, file, f"{where}/{escape_pointer(name)}", operation) for name, sub in value.items()}
            elif key == "dependencies":  # draft 7's, which 2020-12 split in two
                for name, needs in value.items():
                    if isinstance(needs, list):
                        out.setdefault("dependentRequired", {})[name] = needs
                    else:
                        out.setdefault("dependentSchemas", {})[name] = self.schema(needs, file, f"{where}/{escape_pointer(name)}", operation)
            elif key == "discriminator":
                out["x-discriminator"] = value
                self._discriminated.append((out, file, at, operation))
            elif key not in RESOLVED:
                out[key] = value
        return self._finish(raw, out)

    def _resolve_schema_ref(self, ref: str, file: Path, at: str, operation: str | None) -> tuple[Any, Path, str]:
        """A schema's ``$ref``; in 3.1 ``#/$defs/Name`` is also the ``$defs`` of a schema enclosing the reference."""
        try:
            return self._resolve(ref, file, at, operation)
        except SpecError:
            file_part, _, fragment = ref.partition("#")
            if not self.modern or file_part or not fragment.startswith(("/$defs/", "/definitions/")):
                raise
            tokens = [token for token in at.split("/") if token]
            for end in range(len(tokens), 0, -1):  # the innermost schema with that entry, as a schema with $id would be
                try:
                    return self._resolve("#/" + "/".join(tokens[:end]) + fragment, file, at, operation)
                except SpecError:
                    continue
            raise

    def _local_definition(self, parts: list[str], file: Path, fragment: str, operation: str | None, at: str) -> str | None:
        """A ``$defs`` entry (3.1) as a definition of its own, converted once: it may be recursive, and it may be a model."""
        if not self.modern or len(parts) < 2 or parts[-2] not in ("$defs", "definitions"):
            return None
        name = self._hoisted.get((file, fragment))
        if name is not None:
            return name
        tokens = [token.replace("~1", "/").replace("~0", "~") for token in parts]
        wanted = ".".join(tokens[2:]) if tokens[:2] == ["components", "schemas"] and len(tokens) > 2 else ".".join(tokens[-2:])
        wanted = re.sub(r"[^A-Za-z0-9._$-]", "_", wanted)  # a name the engine's "#/definitions/<name>" can carry
        name, count = wanted, 1
        while name in self.definitions or name in self._definition_origins or name in self._definition_pointers:
            count += 1
            name = f"{wanted}-{count}"
        self._hoisted[(file, fragment)] = name
        self._definition_pointers[name] = (file, fragment)
        self.definitions[name] = {}  # named before converting, so a recursive reference finds it
        target, _, _ = self._resolve(f"#{fragment}", file, at, operation)
        self.definitions[name] = self.schema(target, file, fragment, operation)
        return name

    # -- discriminators --------------------------------------------------------

    DISCRIMINATOR_REQUIRED = False  # OpenAPI 3 leaves it to the schemas; a dispatch requires the value anyway

    def _discriminator(self, schema: dict[str, Any], definition: str | None, file: Path, at: str, operation: str | None) -> Discriminator | None:
        """``{propertyName, mapping}`` on a oneOf/anyOf of references, or on a base that schemas extend with allOf."""
        raw = schema["x-discriminator"]
        where = f"{at}/discriminator"
        if not isinstance(raw, dict) or not isinstance(raw.get("propertyName"), str):
            raise SpecError(file, where, "a discriminator must be an object with a 'propertyName'", operation)
        alternatives: list[str] | None = None
        for key in ("oneOf", "anyOf"):
            if key not in schema:
                continue
            alternatives = []
            for index, sub in enumerate(schema[key]):
                ref = sub.get("$ref") if isinstance(sub, dict) and len(sub) == 1 else None
                if not (isinstance(ref, str) and ref.startswith(REF_PREFIX)):
                    raise SpecError(file, f"{at}/{key}/{index}", f"with a discriminator, each {key} alternative must be a $ref to a schema of components/schemas", operation)
                alternatives.append(ref[len(REF_PREFIX) :])
            break
        if alternatives is None and definition is None:
            return None  # nothing can extend an inline schema: its discriminator only documents it
        label = f"'{definition}'" if definition else "this schema"
        mapping: dict[str, tuple[str, Path, str]] = {}
        for value, target in (raw.get("mapping") or {}).items():
            entry = f"{where}/mapping/{escape_pointer(str(value))}"
            mapping[str(value)] = (self._mapping_target(f"the discriminator mapping '{value}' of {label}", str(target), file, entry, operation), file, entry)
        return Discriminator(schema, definition, raw["propertyName"], mapping, alternatives, file, where, operation)

    def _mapping_target(self, what: str, target: str, file: Path, at: str, operation: str | None) -> str:
        """The definition a mapping value names: a schema name, or a reference (``#/components/schemas/Cat``, ``other.yaml#/...``)."""
        document: Any = self.document if file == self.path else read_document(file)
        named = ((document or {}).get("components") or {}).get("schemas") or {}
        ref = f"#{self.DEFINITIONS_POINTER}/{escape_pointer(target)}" if target in named else target
        try:
            self._resolve(ref, file, at, operation)
        except SpecError:
            raise SpecError(file, at, f"{what} points to '{target}', which does not exist", operation) from None
        converted = self.schema({"$ref": ref}, file, at, operation).get("$ref")
        if not (isinstance(converted, str) and converted.startswith(REF_PREFIX)):
            raise SpecError(file, at, f"{what} points to '{target}', which is not a schema of components/schemas", operation)
        return converted[len(REF_PREFIX) :]

    def _inline(self, schema: dict[str, Any]) -> dict[str, Any]:
        """A parameter's schema with a top reference replaced by its definition: readers coerce by ``type``."""
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            return dict(self.definitions.get(ref[len(REF_PREFIX) :], schema))
        return schema

    # -- parameters ------------------------------------------------------------

    def _parameter(self, raw: dict[str, Any], file: Path, at: str, operation: str) -> Parameter:
        raw, file, at = self._dereferenced(raw, file, at, operation)
        location = raw["in"]
        name = raw["name"]
        if location == "header" and str(name).lower() == "authorization":
            # Ignoring it, as OpenAPI 3 says, would leave unchecked what the author surely meant to protect.
            raise SpecError(
                file, at, "a header parameter 'Authorization' is not a parameter in OpenAPI 3: say how callers authenticate with 'security' (and components/securitySchemes)", operation
            )
        if location == "header" and str(name).lower() in IGNORED_HEADERS:
            log.warning("%s: at %s (operation %s): header parameter '%s' ignored, as OpenAPI 3 says: the media types come from 'content'", file, at, operation, name)
        if "schema" not in raw:
            raise SpecError(file, at, f"parameter '{name}' has 'content' but no 'schema': macaron reads parameters described by 'schema'", operation)
        converted = self.schema(raw["schema"], file, f"{at}/schema", operation)
        schema = self._inline(converted)
        shape = schema_shape(schema)
        style = str(raw.get("style", STYLES[location][0]))
        explode = bool(raw.get("explode", style == "form"))
        label = f"{location} parameter '{name}'"
        if style not in STYLES[location]:
            raise SpecError(file, f"{at}/style", f"{label} with style {style}: a {location} parameter is written in style {' or '.join(STYLES[location])}", operation)
        problem = self._unreadable(style, explode, shape, schema)
        if problem:
            raise SpecError(file, at, f"{label} ({shape}, style {style}, explode {str(explode).lower()}): {problem}", operation)
        return Parameter(
            name=name,
            location=location,
            python_name=python_name(name, lower=location == "header"),
            required=bool(raw.get("required")) or location == "path",
            # An object keeps its reference: its model, and its definition's unknown-field rule.
            schema=converted if shape == "object" else schema,
            collection_format=ARRAY_STYLES.get((style, explode)) if shape == "array" else None,
            default=schema.get("default"),
            has_default="default" in schema,
            style=style,
            explode=explode,
            allow_reserved=location == "query" and raw.get("allowReserved") is True,  # OpenAPI 3: ignored elsewhere
        )

    def _unreadable(self, style: str, explode: bool, shape: str, schema: dict[str, Any]) -> str | None:
        """Why a parameter cannot be read in its style, outside OpenAPI 3's serialization table; None when it can."""
        if style == "deepObject" and (shape != "object" or not explode):
            return "deepObject is for objects, with explode true (filter[color]=red)"
        if style in ("spaceDelimited", "pipeDelimited") and (shape == "primitive" or explode):
            return f"{style} is for arrays and objects, with explode false"
        if shape == "array":
            if schema_shape(self._inline(schema.get("items") or {})) != "primitive":
                return "its items are arrays or objects, which have no text form in a URL, header or cookie"
            return None
        if shape != "object":
            return None
        members = self._members(schema)[0]
        extra = schema.get("additionalProperties")
        if style == "form" and explode and not members:
            return "an exploded form object is read from its properties' names: list them in 'properties'"
        repeated = style == "deepObject" or (style == "form" and explode)  # a property may come several times
        named = [(f"property '{prop}'", sub) for prop, sub in members.items()] + ([("additionalProperties", extra)] if isinstance(extra, dict) else [])
        for what, sub in named:
            kind = schema_shape(self._inline(sub)) if isinstance(sub, dict) else "primitive"
            if kind == "object" or (kind == "array" and not repeated):
                return f"its {what} is {'an object' if kind == 'object' else 'an array'}, which this style cannot write inside an object"
            if kind == "array" and schema_shape(self._inline(self._inline(sub).get("items") or {})) != "primitive":
                return f"its {what} is an array of arrays or objects"
        return None

    def _check_names(self, parameters: list[Parameter], pointer: str, operation: str) -> None:
        """Each name of the query or the cookies is one parameter's: an exploded form object takes its properties' names."""
        for location in ("query", "cookie"):
            taken: dict[str, str] = {}
            for parameter in parameters:
                if parameter.location != location:
                    continue
                names = [parameter.name]
                if parameter.style == "form" and parameter.explode and schema_shape(self._inline(parameter.schema)) == "object":
                    names = list(self._members(parameter.schema)[0])
                for taken_name in names:
                    other = taken.setdefault(taken_name, parameter.name)
                    if other != parameter.name:
                        owners = " and ".join(f"'{owner}'" for owner in (other, parameter.name))
                        raise SpecError(
                            self.path, pointer, f"{location} parameters {owners} are both read from the name '{taken_name}' (an exploded form object is read from its properties' names)", operation
                        )

    def _operation_parameters(self, path: str, pointer: str, shared: list[Any], raw: dict[str, Any], name: str) -> tuple[list[Parameter], list[str]]:
        parameters = self._merged_parameters(path, pointer, shared, raw, name)
        parameters = [p for p in parameters if not (p.location == "header" and p.name.lower() in IGNORED_HEADERS)]
        self._check_names(parameters, pointer, name)
        body = raw.get("requestBody")
        if body is None:
            return parameters, [JSON_MIME]
        body, file, at = self._dereferenced(body, self.path, f"{pointer}/requestBody", name)
        content: dict[str, Any] = body.get("content") or {}
        json_mime = next((mime for mime in content if is_json(mime)), None)
        form_mime = next((mime for mime in content if is_form(mime)), None)
        others = [mime for mime in content if not is_json(mime) and not is_form(mime)]
        if json_mime and form_mime:
            raise SpecError(file, f"{at}/content", "a request body read as JSON or as form fields, not both: macaron reads one kind per operation", name)
        if form_mime and others:
            raise SpecError(file, f"{at}/content", f"a request body read as form fields or as {', '.join(others)}, not both: macaron reads one kind besides JSON", name)
        required = bool(body.get("required"))
        if json_mime or others:
            schema: dict[str, Any] = {}
            if json_mime:
                media_at = f"{at}/content/{escape_pointer(json_mime)}"
                schema = self.schema(content[json_mime].get("schema", {}), file, f"{media_at}/schema", name)
            parameter = Parameter("body", "body", "body", required, schema, json_body=json_mime is not None)
            for mime in others:
                media_at = f"{at}/content/{escape_pointer(mime)}/schema"
                raw_schema = self._inline(self.schema((content[mime] or {}).get("schema", {}), file, media_at, name))
                if any(kind not in ("string", "null") for kind in _types(raw_schema)) or schema_shape(raw_schema) != "primitive":
                    raise SpecError(file, media_at, f"a {mime} body arrives as {'text' if mime.startswith('text/') else 'bytes'}: its schema must be type: string", name)
                parameter.raw_bodies.append(raw_body(mime, raw_schema))
            parameters.append(parameter)
        elif form_mime:
            parameters.extend(self._form_parameters(content[form_mime], file, f"{at}/content/{escape_pointer(form_mime)}", name))
        return parameters, list(content) or [JSON_MIME]

    def _form_parameters(self, media: dict[str, Any], file: Path, at: str, operation: str) -> list[Parameter]:
        """A form body's fields, one formData parameter per property of its object schema."""
        raw, file, schema_at = self._dereferenced(media.get("schema") or {}, file, f"{at}/schema", operation)
        properties = raw.get("properties")
        if not isinstance(properties, dict):
            raise SpecError(file, schema_at, "a form body's schema must be an object with 'properties' (one per form field)", operation)
        required = set(raw.get("required") or [])
        encoding = media.get("encoding") or {}
        parameters = []
        for field_name, field in properties.items():
            field_at = f"{schema_at}/properties/{escape_pointer(field_name)}"
            field_raw = self._dereferenced(field, file, field_at, operation)[0]
            is_file = field_raw.get("format") == "binary" or "contentMediaType" in field_raw
            schema = {} if is_file else self._inline(self.schema(field, file, field_at, operation))
            collection_format = None
            if "array" in _types(schema):
                style = (encoding.get(field_name) or {}).get("style", "form")
                explode = bool((encoding.get(field_name) or {}).get("explode", style == "form"))
                collection_format = ARRAY_STYLES.get((style, explode))
                if collection_format is None:
                    raise SpecError(file, field_at, f"form field '{field_name}' with style {style} is not supported", operation)
            parameters.append(
                Parameter(
                    name=field_name,
                    location="formData",
                    python_name=python_name(field_name),
                    required=field_name in required,
                    schema=schema,
                    collection_format=collection_format,
                    default=schema.get("default"),
                    has_default="default" in schema,
                    is_file=is_file,
                )
            )
        return parameters

    # -- responses -------------------------------------------------------------

    def _responses(self, raw: dict[str, Any], pointer: str, name: str) -> tuple[dict[int | str, Response], list[str]]:
        responses: dict[int | str, Response] = {}
        produces: list[str] = []
        for code, response in (raw.get("responses") or {}).items():
            at = f"{pointer}/responses/{escape_pointer(code)}"
            if re.fullmatch(r"[1-5]XX", code, re.IGNORECASE):
                code = code.upper()  # the specification allows either case: one key per range
            elif not (code.isdigit() or code == "default"):
                raise SpecError(self.path, at, f"response status '{code}': a status is a number, a range (2XX) or default", name)
            response, file, at = self._dereferenced(response, self.path, at, name)
            content: dict[str, Any] = response.get("content") or {}
            produces.extend(mime for mime in content if mime not in produces)
            json_mime = next((mime for mime in content if is_json(mime)), None)
            schema = None
            if json_mime is not None and "schema" in content[json_mime]:
                schema = self.schema(content[json_mime]["schema"], file, f"{at}/content/{escape_pointer(json_mime)}/schema", name)
            key: int | str = int(code) if code.isdigit() else code
            responses[key] = Response(key, schema, response.get("description", ""))
        return responses, produces or [JSON_MIME]
