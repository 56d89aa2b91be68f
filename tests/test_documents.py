"""One implementation of closing objects: a spec document is closed exactly as the engine closes the spec it serves."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import jsonschema_rs
import pytest

from macaron import load_service
from macaron.app import Service
from macaron.closing import PART_SUFFIX, is_part_copy, is_synthetic
from macaron.documents import DOCUMENT_PART_SUFFIX, _root_schemas, bundle, close_document
from macaron.preparing import operation_schemas

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(path for path in (ROOT / "examples").iterdir() if (path / "macaron.yaml").is_file())
# What the examples' macaron.yaml files read from the environment.
SECRETS = {"REPORTS_JWT_SECRET": "parity-test-secret-0123456789abcdef", "REPORTS_REDIS_URL": "redis://127.0.0.1:9/0"}
DATA = ("example", "examples", "default", "enum", "const")  # values, not schemas


def closed_objects(schema: object) -> Counter[tuple[str, tuple[str, ...]]]:
    """Every object closed in ``schema``: how (additional or unevaluated properties) and over which properties."""
    found: Counter[tuple[str, tuple[str, ...]]] = Counter()
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            for keyword in ("additionalProperties", "unevaluatedProperties"):
                if node.get(keyword) is False:
                    found[(keyword, tuple(sorted(node.get("properties") or {})))] += 1
            pending.extend(value for key, value in node.items() if key not in DATA)
        elif isinstance(node, list):
            pending.extend(node)
    return found


def assert_closed_alike(service: Service) -> None:
    for api in service.apis.values():
        document = close_document(bundle(api.document, Path(api.file)))
        swagger = "swagger" in document
        definitions = document["definitions"] if swagger else document.get("components", {}).get("schemas", {})
        for name, schema in api.definitions.items():
            if is_synthetic(name) and not is_part_copy(name):
                continue  # the engine's own forms (Pet:any, variants) that a document does not have
            in_document = name.removesuffix(PART_SUFFIX) + DOCUMENT_PART_SUFFIX if is_part_copy(name) else name
            assert closed_objects(definitions.get(in_document)) == closed_objects(schema), f"{api.file}: {name}"
        engine = sum((closed_objects(schema) for schema in operation_schemas(api)), Counter())
        written = sum((closed_objects(schema) for schema in _root_schemas(document, swagger, with_definitions=False)), Counter())
        assert written == engine, f"{api.file}: the parameters, bodies and responses"


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_example_spec_is_closed_as_the_engine_closes_it(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    assert_closed_alike(load_service(example))


SHAPES = """
openapi: 3.1.0
info: {title: shapes, version: '1'}
paths:
  /shapes:
    post:
      operationId: add_shape
      x-bind-server: shapes_api.add_shape
      requestBody:
        required: true
        content: {application/json: {schema: {$ref: '#/components/schemas/Shape'}}}
      responses:
        '201':
          description: added
          content: {application/json: {schema: {$ref: '#/components/schemas/Labelled'}}}
components:
  schemas:
    Shape:
      type: object
      required: [kind]
      properties: {kind: {type: string}}
      if: {properties: {kind: {const: circle}}}
      then: {properties: {radius: {type: number}}}
      else: {properties: {side: {type: number}}}
    Label:
      type: object
      properties: {label: {type: string}}
    Labelled:
      allOf:
        - $ref: '#/components/schemas/Label'
        - {properties: {id: {type: integer}}}
"""


def test_conditionals_of_2020_12_and_allof_parts_are_closed_as_the_engine_closes_them(tmp_path: Path) -> None:
    (tmp_path / "apis").mkdir()
    (tmp_path / "apis" / "shapes.yaml").write_text(textwrap.dedent(SHAPES))
    (tmp_path / "macaron.yaml").write_text("name: shapes\n")
    service = load_service(tmp_path)
    assert_closed_alike(service)
    document = close_document(bundle(service.apis["shapes"].document, service.apis["shapes"].file))
    schemas = document["components"]["schemas"]
    assert schemas["Labelled"]["allOf"][0] == {"$ref": "#/components/schemas/Label__part"}  # the part stays open

    def valid(name: str, value: object) -> bool:
        schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
        return bool(jsonschema_rs.Draft202012Validator(schema).is_valid(value))

    assert valid("Shape", {"kind": "circle", "radius": 1}) and not valid("Shape", {"kind": "circle", "radius": 1, "": None})
    assert valid("Shape", {"kind": "square", "side": 2}) and not valid("Shape", {"kind": "square", "radius": 1})
    assert valid("Labelled", {"label": "a", "id": 1}) and not valid("Labelled", {"label": "a", "id": 1, "x": 0})
    assert valid("Label", {"label": "a"}) and not valid("Label", {"label": "a", "id": 1})  # Label alone is closed
