"""OpenAPI 3.1: every JSON Schema 2020-12 keyword enforced on requests and responses, or start-up refuses it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from macaron import apis
from macaron.errors import ModelValidationError
from macaron.spec import SpecError
from service_maker import ServiceMaker

SPEC = """
openapi: 3.1.0
info: {title: t, version: '1'}
paths:
  /orders:
    post:
      operationId: place
      x-bind-server: HANDLERS.place
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Order'}
      responses:
        '200':
          description: the order
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Order'}
components:
  schemas:
    Order:
      type: object
      required: [country]
      properties:
        country: {type: string}
        unit: {const: cm}
        size: {type: number, exclusiveMinimum: 0}
        point: {type: array, prefixItems: [{type: number}, {type: number}], items: false}
        header: {type: array, prefixItems: [{type: string}], unevaluatedItems: {type: integer}}
        tags: {type: array, items: {type: string}, contains: {const: urgent}, minContains: 1, maxContains: 2}
        labels: {type: object, propertyNames: {pattern: '^[a-z]+$'}, additionalProperties: {type: string}}
        codes: {type: object, patternProperties: {'^x-': {type: integer}}}
        legacy: false
        anything: true
        card: {type: string}
        tree: {$ref: '#/$defs/Node'}
        root: {$ref: '#/components/schemas/Order/$defs/Node'}
        shipping: {$ref: '#/components/schemas/Address', minProperties: 2}
        email: {type: string, format: email}
      if: {properties: {country: {const: US}}, required: [country]}
      then:
        properties: {zip: {type: string, pattern: '^[0-9]{5}$'}}
        required: [zip]
      else:
        properties: {postcode: {type: string}}
      dependentRequired: {card: [billing]}
      dependentSchemas:
        card:
          properties: {billing: {type: string, minLength: 3}}
      $defs:
        Node:
          type: object
          properties:
            value: {type: integer}
            children: {type: array, items: {$ref: '#/$defs/Node'}}
    Address:
      type: object
      properties:
        street: {type: string}
        city: {type: string}
"""

HANDLERS = """
from macaron import apis

def place(body):
    if body.country == "XX":
        return {"country": "US"}  # breaks the response's if/then: no zip
    if body.country == "US":
        assert body.zip == body["zip"]  # a property of 'then' is one of the model's
    if body["country"] == "TR":
        return {"country": "TR", "tree": {"value": 1, "children": [{"value": "one"}]}}
    return body
"""


def errors_of(response: Any) -> dict[str, str]:
    assert response.status_code == 400, response.json
    return {problem["field"]: problem["message"] for problem in response.json["errors"]}


@pytest.fixture
def client(services: ServiceMaker) -> Any:
    return services.client(SPEC, HANDLERS, header=False)


@pytest.mark.parametrize(
    "body",
    [
        {"country": "US", "zip": "12345"},
        {"country": "FR", "postcode": "75001"},
        {"country": "FR", "unit": "cm", "size": 0.5, "point": [1, 2.5], "header": ["v1", 3, 4]},
        {"country": "FR", "tags": ["a", "urgent"], "labels": {"colour": "red"}, "codes": {"x-a": 1}, "anything": [1]},
        {"country": "FR", "card": "visa", "billing": "1 Main St"},
        {"country": "FR", "tree": {"value": 1, "children": [{"value": 2, "children": []}]}, "root": {"value": 3}},
        {"country": "FR", "shipping": {"street": "Rue", "city": "Paris"}, "email": "a@example.com"},
    ],
)
def test_valid_bodies_pass(client: Any, body: dict[str, Any]) -> None:
    response = client.post("/orders", json=body)
    assert response.status_code == 200, response.json
    assert response.json == body


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"country": "FR", "unit": "in"}, "/body/unit", '"in" is not "cm" (the only value allowed)'),
        ({"country": "FR", "size": 0}, "/body/size", "0 is less than or equal to the minimum of 0"),
        ({"country": "FR", "point": [1, 2, 3]}, "/body/point/2", "is not allowed here"),
        ({"country": "FR", "point": ["a", 2]}, "/body/point/0", '"a" is not of type "number"'),
        ({"country": "FR", "header": ["v1", "x"]}, "/body/header/1", '"x" is not of type "integer"'),
        ({"country": "FR", "tags": ["a"]}, "/body/tags", 'must contain 1 to 2 item(s) matching {"const":"urgent"}'),
        ({"country": "FR", "tags": ["urgent"] * 3}, "/body/tags", 'must contain 1 to 2 item(s) matching {"const":"urgent"}'),
        ({"country": "FR", "labels": {"Colour": "red"}}, "/body/labels/Colour", 'is not an allowed property name: "Colour" does not match "^[a-z]+$"'),
        ({"country": "FR", "codes": {"x-a": "one"}}, "/body/codes/x-a", '"one" is not of type "integer"'),
        ({"country": "FR", "legacy": 1}, "/body/legacy", "is not allowed here"),
        ({"country": "US"}, "/body/zip", "is required"),
        ({"country": "US", "zip": "1234"}, "/body/zip", '"1234" does not match "^[0-9]{5}$"'),
        ({"country": "FR", "zip": "12345"}, "/body/zip", "is not allowed here (unknown field)"),  # 'then' does not apply
        ({"country": "FR", "card": "visa"}, "/body/billing", "is required when 'card' is present"),
        ({"country": "FR", "card": "visa", "billing": "no"}, "/body/billing", '"no" is shorter than 3 characters'),
        ({"country": "FR", "tree": {"children": [{"value": "x"}]}}, "/body/tree/children/0/value", '"x" is not of type "integer"'),
        ({"country": "FR", "root": {"value": 1, "colour": "red"}}, "/body/root/colour", "is not allowed here (unknown field)"),
        ({"country": "FR", "shipping": {"street": "Rue"}}, "/body/shipping", '{"street":"Rue"} has less than 2 properties'),
        ({"country": "FR", "shipping": {"street": "Rue", "city": "Paris", "floor": 2}}, "/body/shipping/floor", "is not allowed here (unknown field)"),
        ({"country": "FR", "email": "nope"}, "/body/email", '"nope" is not a "email"'),
        ({"country": "FR", "colour": "red"}, "/body/colour", "is not allowed here (unknown field)"),
    ],
)
def test_each_keyword_is_enforced_with_a_400_naming_the_field(client: Any, body: dict[str, Any], field: str, message: str) -> None:
    assert errors_of(client.post("/orders", json=body)) == {field: message}


def test_responses_are_checked_against_the_same_keywords(client: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="macaron"):
        response = client.post("/orders", json={"country": "XX"})
    assert response.status_code == 500
    assert response.json["error"] == "BAD_RESPONSE"
    assert "/zip: is required" in caplog.text
    response = client.post("/orders", json={"country": "TR"})
    assert response.status_code == 500
    assert '/tree/children/0/value: "one" is not of type "integer"' in caplog.text


def test_unknown_fields_are_allowed_when_the_service_says_so(services: ServiceMaker) -> None:
    client = services.client(SPEC, HANDLERS, header=False, config={"reject_unknown_fields": False})
    response = client.post("/orders", json={"country": "FR", "zip": "12345", "colour": "red"})
    assert response.status_code == 200, response.json
    assert errors_of(client.post("/orders", json={"country": "US"})) == {"/body/zip": "is required"}  # the keywords still apply


COMPOSED = """
openapi: 3.1.0
info: {title: t, version: '1'}
paths:
  /items:
    post:
      x-bind-server: HANDLERS.echo
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Item'}
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {type: object, additionalProperties: true}
components:
  schemas:
    Item:
      type: object
      properties:
        kind: {type: string}
        sealed:
          type: object
          unevaluatedProperties: false
          allOf: [{$ref: '#/components/schemas/Base'}]
          properties: {extra: {type: string}}
        open:
          type: object
          unevaluatedProperties: {type: integer}
          properties: {name: {type: string}}
      oneOf:
        - properties: {kind: {const: a}, a: {type: integer}}
          required: [a]
        - properties: {kind: {const: b}, b: {type: integer}}
          required: [b]
    Base:
      type: object
      properties:
        id: {type: integer}
"""


def test_close_objects_counts_what_alternatives_and_unevaluated_properties_evaluate(services: ServiceMaker) -> None:
    client = services.client(COMPOSED, "def echo(body):\n    return body.to_json()\n", header=False)
    for body in ({"kind": "a", "a": 1}, {"kind": "b", "b": 2, "sealed": {"id": 1, "extra": "x"}}, {"kind": "a", "a": 1, "open": {"name": "n", "more": 3}}):
        response = client.post("/items", json=body)
        assert response.status_code == 200, response.json
    # Beside the object's own properties, an alternative adds its own only when it is the one that matches.
    assert errors_of(client.post("/items", json={"kind": "a", "a": 1, "b": 2})) == {"/body/b": "is not allowed here (unknown field)"}
    # A definition referenced from a schema with unevaluatedProperties is open there (its own fields count), closed elsewhere.
    assert errors_of(client.post("/items", json={"kind": "a", "a": 1, "sealed": {"id": 1, "nope": 2}})) == {"/body/sealed/nope": "is not allowed here (unknown field)"}
    assert errors_of(client.post("/items", json={"kind": "a", "a": 1, "open": {"more": "x"}})) == {"/body/open/more": '"x" is not of type "integer"'}


DISCRIMINATED = """
openapi: 3.1.0
info: {title: t, version: '1'}
paths:
  /pets:
    post:
      x-bind-server: HANDLERS.echo
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Pet'}
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Pet'}
components:
  schemas:
    Pet:
      oneOf: [{$ref: '#/components/schemas/Cat'}, {$ref: '#/components/schemas/Dog'}]
      discriminator:
        propertyName: kind
        mapping: {cat: '#/components/schemas/Cat', dog: Dog}
    Cat:
      type: object
      required: [kind]
      properties: {kind: {const: cat}, claws: {type: integer}}
    Dog:
      type: object
      required: [kind]
      properties: {kind: {const: dog}, bark: {type: string}}
"""


def test_a_discriminator_with_const_values_dispatches(services: ServiceMaker) -> None:
    client = services.client(DISCRIMINATED, "def echo(body):\n    return {**body.to_json(), 'bark': type(body).__name__} if body.kind == 'dog' else body\n", header=False)
    response = client.post("/pets", json={"kind": "dog"})
    assert response.status_code == 200, response.json
    assert response.json == {"kind": "dog", "bark": "Dog"}
    assert errors_of(client.post("/pets", json={"kind": "cat", "bark": "woof"})) == {"/body/bark": "is not allowed here (unknown field)"}
    assert errors_of(client.post("/pets", json={"kind": "fish"})) == {"/body/kind": '"fish" is not one of "cat", "dog" (the discriminator of Pet)'}


# -- refused at start-up ---------------------------------------------------------------

MINIMAL = """
openapi: 3.1.0
info: {{title: t, version: '1'}}
{root}paths:
  /hello:
    post:
      operationId: hello
      x-bind-server: HANDLERS.hello
      requestBody:
        content:
          application/json:
            schema: {schema}
      responses:
        '200': {{description: ok}}
components:
  schemas:
    Thing: {thing}
"""


def start_error(services: ServiceMaker, *, schema: str = "{type: object}", thing: str = "{type: object}", root: str = "") -> SpecError:
    spec = MINIMAL.format(schema=schema, thing=thing, root=root)
    root_folder = services.write(spec, "def hello(**kwargs):\n    return None\n", header=False)
    with pytest.raises(SpecError) as caught:
        services.build(root_folder)
    assert caught.value.file.endswith("x.yaml")
    return caught.value


SCHEMA_AT = "/paths/~1hello/post/requestBody/content/application~1json/schema"


@pytest.mark.parametrize(
    ("schema", "pointer", "message"),
    [
        ("{type: string, minLenght: 3}", f"{SCHEMA_AT}/minLenght", "'minLenght' is not a keyword of JSON Schema 2020-12 or OpenAPI 3.1: it would validate nothing"),
        ("{properties: {a: {$dynamicRef: '#meta'}}}", f"{SCHEMA_AT}/properties/a/$dynamicRef", "'$dynamicRef' is not supported"),
        ("{$schema: 'http://json-schema.org/draft-07/schema#'}", f"{SCHEMA_AT}/$schema", "dialect http://json-schema.org/draft-07/schema#"),
        ("{properties: {a: {$ref: '#/$defs/Nope'}}}", f"{SCHEMA_AT}/properties/a", "$ref '#/$defs/Nope' cannot be resolved"),
        ("{properties: {a: {items: {$ref: '#/paths/~1hello/post/requestBody/content/application~1json/schema/properties/a'}}}}", f"{SCHEMA_AT}/properties/a/items", "leads back to the schema it is in"),
    ],
)
def test_what_would_not_be_enforced_stops_start_up_in_an_operation(services: ServiceMaker, schema: str, pointer: str, message: str) -> None:
    error = start_error(services, schema=schema)
    assert (error.pointer, error.operation) == (pointer, "hello")
    assert message in error.reason


def test_what_would_not_be_enforced_stops_start_up_in_a_definition(services: ServiceMaker) -> None:
    error = start_error(services, thing="{type: object, properties: {n: {type: integer, maximun: 3}}}")
    assert error.pointer == "/components/schemas/Thing/properties/n/maximun"
    assert "x-maximun" in error.reason  # the way to keep an annotation of one's own


def test_another_json_schema_dialect_stops_start_up(services: ServiceMaker) -> None:
    error = start_error(services, root="jsonSchemaDialect: 'https://json-schema.org/draft/2019-09/schema'\n")
    assert error.pointer == "/jsonSchemaDialect"
    assert start_error(services, schema="{type: striing}").pointer == f"{SCHEMA_AT}/type"  # and the document itself is checked


def test_models_know_conditional_properties_and_defs_entries(services: ServiceMaker) -> None:
    services.app(SPEC, HANDLERS, header=False)
    order = apis.x.Order.from_json({"country": "US", "zip": "12345", "tree": {"value": 1, "children": [{"value": 2}]}})
    assert order.zip == "12345"  # declared in 'then'
    node = apis.x.Order__defs_Node  # the $defs entry Node of Order: a model of its own
    assert isinstance(order.tree, node) and isinstance(order.tree.children[0], node)
    with pytest.raises(ModelValidationError) as caught:
        apis.x.Order.from_json({"country": "US"})
    assert caught.value.problems == [{"field": "/zip", "message": "is required"}]
