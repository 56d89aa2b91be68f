"""macaron's own view of an API, whatever spec format it came from.

A ``load_spec`` implementation turns a spec file into an :class:`Api`. Schemas in
it are JSON Schema whose references all read ``#/definitions/<Name>`` and point
into :attr:`Api.definitions`; nullability is already folded into ``type`` lists.
Their vocabulary is draft 4 (Swagger 2.0, OpenAPI 3.0, and the default), or JSON
Schema 2020-12 when the definitions are a :class:`Definitions` saying so (OpenAPI
3.1): every schema of an Api is compiled in its definitions' dialect. So the
engine never looks at Swagger 2.0 or OpenAPI 3 syntax, and a loader for another
format only has to produce these.

Polymorphism (a discriminator) is in the same terms: a definition ``Pet`` whose
value may be one of its subtypes has a companion definition ``Pet:any`` holding
the dispatch (:data:`DISPATCH`: the property, value -> definition, the base and the
definitions it extends), and the references where a subtype may appear read
``#/definitions/Pet:any``; those in a subtype's own ``allOf`` keep naming ``Pet``.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from macaron.startup import StartupError

PARAMETER_LOCATIONS = ("path", "query", "header", "cookie", "body", "formData")
DRAFT4 = "draft4"  # JSON Schema draft 4, as Swagger 2.0 and OpenAPI 3.0 use it
DRAFT2020 = "2020-12"  # JSON Schema 2020-12, as OpenAPI 3.1 uses it
# The marker of a discriminator's dispatch schema: {"propertyName", "mapping": {value: definition}, "base", "extends"}.
DISPATCH = "x-dispatch"
POLYMORPHIC_SUFFIX = ":any"  # Pet:any is Pet or any of its subtypes, chosen by the discriminator


def python_name(name: str, lower: bool = False) -> str:
    """A spec name made into a Python identifier: ``X-Request-Id`` -> ``x_request_id`` (headers)."""
    safe = re.sub(r"\W", "_", name.lower() if lower else name)
    if not safe or safe[0].isdigit():
        safe = "_" + safe
    if keyword.iskeyword(safe):
        safe += "_"
    return safe


def schema_shape(schema: dict[str, Any]) -> str:
    """What a parameter's (resolved) schema holds: "object", "array" or "primitive"; how its text is read depends on it."""
    types = schema.get("type")
    kinds = [types] if isinstance(types, str) else list(types or [])
    if "object" in kinds or (not kinds and ("properties" in schema or "additionalProperties" in schema)):
        return "object"
    return "array" if "array" in kinds else "primitive"


class Definitions(dict[str, dict[str, Any]]):
    """An Api's named schemas, and the JSON Schema dialect they and the Api's other schemas are written in."""

    def __init__(self, *args: Any, dialect: str = DRAFT4, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dialect = dialect


def dialect_of(definitions: dict[str, Any]) -> str:
    """The dialect of an Api's schemas: a plain dict of definitions (a loader of another format) is draft 4."""
    return getattr(definitions, "dialect", DRAFT4)


class SpecError(StartupError):
    """A spec that cannot be served. The message names the file, the JSON path and the operation."""

    def __init__(
        self, file: Path | str, pointer: str, message: str, operation: str | None = None, *, line: tuple[int, int] | None = None
    ) -> None:
        self.file = str(file)
        self.pointer = pointer or "/"
        self.operation = operation
        self.reason = message
        # A file that does not parse has no JSON path yet: its line and column (1-based, as editors count) say where.
        where = f"{self.file}:{line[0]}:{line[1]}" if line else f"{self.file}: at {self.pointer}"
        if operation:
            where += f" (operation {operation})"
        super().__init__(f"{where}: {message}")


@dataclass
class RawBody:
    """A request body of a media type that is neither JSON nor a form: the handler gets its text or its bytes."""

    media_type: str  # as declared, lower case, without parameters; may be a wildcard (image/*, */*)
    text: bool  # text/*: a str decoded with the request's charset; otherwise bytes
    schema: dict[str, Any]  # a string schema: its maxLength, minLength, pattern, enum (text) or maxLength in bytes (binary)


@dataclass
class Parameter:
    name: str
    location: str  # one of PARAMETER_LOCATIONS
    python_name: str
    required: bool
    schema: dict[str, Any]
    collection_format: str | None = None  # csv, ssv, tsv, pipes, multi (arrays outside the body)
    # OpenAPI 3's serialization (simple, form, matrix, label, spaceDelimited, pipeDelimited, deepObject);
    # None: collection_format says how an array is written (Swagger 2.0).
    style: str | None = None
    explode: bool = False
    allow_reserved: bool = False  # OpenAPI 3 allowReserved (query): RFC 3986's reserved characters are sent as they are
    default: Any = None
    has_default: bool = False
    is_file: bool = False
    # The body's other media types (text/plain, image/*...); with them, json_body says whether JSON is accepted too.
    raw_bodies: list[RawBody] = field(default_factory=list)
    json_body: bool = True


def status_range(status: int) -> str:
    """The response range (OpenAPI 3) a status falls in: 404 -> ``4XX``. An exact status wins over it, it over ``default``."""
    return f"{status // 100}XX"


def response_key(declared: Container[int | str], status: int | str) -> int | str | None:
    """Which of the declared responses a status answers to: itself, else its range, else ``default`` (None: none)."""
    if status in declared:
        return status
    if isinstance(status, int) and status_range(status) in declared:
        return status_range(status)
    return "default" if "default" in declared else None


@dataclass
class Response:
    status: int | str  # an HTTP status, a range ("2XX", OpenAPI 3), or "default"
    schema: dict[str, Any] | None
    description: str = ""


@dataclass
class Operation:
    api: str
    method: str  # lower case
    path: str  # full path, basePath included, with {name} placeholders
    operation_id: str | None
    handler: str | None  # dotted path of the function that serves it
    decorators: list[str]
    parameters: list[Parameter]
    responses: dict[int | str, Response]
    consumes: list[str]
    produces: list[str]
    security: list[dict[str, list[str]]]
    extensions: dict[str, Any]
    file: Path
    pointer: str  # JSON pointer of the operation in its file
    summary: str = ""
    tags: list[str] = field(default_factory=list)
    security_definitions: dict[str, dict[str, Any]] = field(default_factory=dict)  # the API's, which ``security`` names
    security_pointer: str = "/securityDefinitions"  # where the spec format keeps them, for error messages

    @property
    def name(self) -> str:
        return self.operation_id or f"{self.method.upper()} {self.path}"

    def error(self, message: str, pointer: str | None = None) -> SpecError:
        """A SpecError located at this operation."""
        return SpecError(self.file, pointer or self.pointer, message, self.name)


@dataclass
class Api:
    name: str
    file: Path
    version: str
    title: str
    base_path: str
    operations: list[Operation]
    definitions: dict[str, dict[str, Any]]
    security_definitions: dict[str, dict[str, Any]]
    document: dict[str, Any]  # the spec as loaded, for /docs and tools
    format: str = "swagger-2.0"
    # Other files the spec's $refs read: shared fragments in apis/ are not served as APIs of their own.
    includes: list[Path] = field(default_factory=list)
    # A readOnly property sent in a request: "reject" (a 400 naming it) or "accept" (validated, passed on, never required).
    read_only_in_requests: str = "reject"
