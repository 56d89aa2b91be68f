"""The spec as macaron enforces it: what the contract run generates requests from."""

from __future__ import annotations

from pathlib import Path

import jsonschema_rs
import yaml
from unit_support import ROOT

from macaron.documents import close_document
from macaron_cli import run_macaron
from macaron_unit import ServiceServer
from macaron_unit.contract import INT_HIGH, INT_LOW, enforced_document, served_apis

PETSTORE3 = ROOT / "examples" / "petstore3"

SWAGGER = {
    "swagger": "2.0",
    "info": {"title": "t", "version": "1"},
    "paths": {
        "/pets": {
            "post": {
                "x-bind-server": "pets_api.add_pet",
                "parameters": [
                    {"name": "body", "in": "body", "schema": {"$ref": "#/definitions/Cat"}},
                    {"name": "limit", "in": "query", "type": "integer"},
                ],
                "responses": {"200": {"description": "ok", "schema": {"type": "object", "properties": {"id": {"type": "integer", "maximum": 9}}}}},
            }
        }
    },
    "definitions": {
        "Pet": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "tags": {"type": "object"}}},
        "Cat": {"allOf": [{"$ref": "#/definitions/Pet"}, {"properties": {"purr": {"type": "number"}}}]},
        "Free": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def accepts(document: dict, name: str, value: object) -> bool:
    schema = {"$ref": f"#/definitions/{name}", "definitions": document["definitions"]}
    return bool(jsonschema_rs.Draft4Validator(schema).is_valid(value))


def test_objects_are_closed_as_the_engine_closes_them() -> None:
    closed = close_document(SWAGGER)  # by the engine's close_objects: tests/test_documents.py checks it over every example
    assert SWAGGER["definitions"]["Pet"].get("additionalProperties") is None  # the original is left alone
    cat = {"name": "Tom", "purr": 2.5}
    assert accepts(closed, "Cat", cat)  # properties of every part of the allOf
    assert not accepts(closed, "Cat", {**cat, "": None})  # but no others
    assert accepts(closed, "Pet", {"name": "Rex"}) and not accepts(closed, "Pet", {"name": "Rex", "purr": 1})  # Pet alone is closed
    assert closed["definitions"]["Cat"]["allOf"][0] == {"$ref": "#/definitions/Pet__part"}  # the part stays open
    assert accepts(closed, "Pet__part", {"name": "Rex", "purr": 1})
    assert accepts(closed, "Free", {"any": "thing"})  # a map says what it allows
    assert accepts(closed, "Pet", {"name": "Rex", "tags": {"x": 1}})  # an object without properties is free-form
    assert closed["paths"]["/pets"]["post"]["responses"]["200"]["schema"]["additionalProperties"] is False


def test_integers_get_the_range_the_server_carries(tmp_path: Path) -> None:
    (tmp_path / "apis").mkdir()
    (tmp_path / "apis" / "pets.yaml").write_text(yaml.safe_dump(SWAGGER))
    (tmp_path / "macaron.yaml").write_text("name: pets\n")
    (api,) = [api for api in served_apis(tmp_path) if api.name == "pets"]
    enforced = enforced_document(api, tmp_path)
    response = enforced["paths"]["/pets"]["post"]["responses"]["200"]["schema"]
    assert response["additionalProperties"] is False and response["properties"]["id"] == {"type": "integer", "maximum": 9, "minimum": INT_LOW}
    limit = enforced["paths"]["/pets"]["post"]["parameters"][1]
    assert (limit["minimum"], limit["maximum"]) == (INT_LOW, INT_HIGH)


def test_a_service_that_accepts_unknown_fields_is_tested_as_written(tmp_path: Path) -> None:
    service = tmp_path / "petstore3"
    (service / "apis").mkdir(parents=True)
    (service / "apis" / "petstore.yaml").write_text((PETSTORE3 / "apis" / "petstore.yaml").read_text())
    config = yaml.safe_load((PETSTORE3 / "macaron.yaml").read_text())
    (service / "macaron.yaml").write_text(yaml.safe_dump({**config, "reject_unknown_fields": False}))
    (api,) = [api for api in served_apis(service) if api.name == "petstore"]
    assert "additionalProperties" not in enforced_document(api, service)["components"]["schemas"]["NewPet"]
    (api,) = [api for api in served_apis(PETSTORE3) if api.name == "petstore"]
    assert enforced_document(api, PETSTORE3)["components"]["schemas"]["NewPet"]["additionalProperties"] is False


def test_the_openapi3_example_keeps_its_contract() -> None:
    # Its NewPet body says nothing of other fields: read as written, {"": null, "name": "0"} would be a valid
    # request, and the server's 400 for the unknown field a broken contract.
    with ServiceServer(PETSTORE3) as server:
        result = run_macaron("test", "--contract", str(PETSTORE3), "--url", server.url, "--seed", "1", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS  POST /v1/pets (addPet)" in result.stdout

