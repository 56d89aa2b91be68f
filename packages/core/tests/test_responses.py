"""Validation of requests as a whole, and of what handlers return."""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient

from service_maker import ServiceMaker

SPEC = """
paths:
  /pets/{id}:
    put:
      x-bind-server: HANDLERS.update
      parameters:
        - {name: id, in: path, required: true, type: integer}
        - {name: limit, in: query, type: integer, maximum: 10}
        - {name: X-Token, in: header, type: string, required: true}
        - {name: pet, in: body, required: true, schema: {$ref: '#/definitions/Pet'}}
      responses:
        200: {description: ok, schema: {$ref: '#/definitions/Pet'}}
  /shape/{kind}:
    get:
      x-bind-server: HANDLERS.shape
      parameters:
        - {name: kind, in: path, required: true, type: string}
      responses:
        200: {description: ok, schema: {$ref: '#/definitions/Pet'}}
        201: {description: created, schema: {$ref: '#/definitions/Created'}}
        204: {description: nothing}
  /anything:
    get:
      x-bind-server: HANDLERS.anything
      responses:
        200: {description: ok, schema: {$ref: '#/definitions/Pet'}}
        default: {description: error, schema: {$ref: '#/definitions/Error'}}
definitions:
  Pet:
    type: object
    required: [name]
    properties:
      name: {type: string}
      owner:
        type: object
        properties:
          name: {type: string}
  Created:
    type: object
    required: [id]
    properties:
      id: {type: integer}
  Error:
    type: object
    properties:
      error: {type: string}
"""

HANDLERS = """
from macaron import apis

def update(pet, id, limit, x_token):
    return pet

def shape(kind):
    if kind == "wrong":
        return {"name": 42, "secret": "internal detail"}
    if kind == "undeclared":
        return {"name": "x"}, 418
    if kind == "created-model":
        return apis.x.Created(id=7)
    if kind == "tuple":
        return apis.x.Created(id=8), 201
    if kind == "none":
        return None, 204
    if kind == "body-on-204":
        return {"name": "x"}, 204
    if kind == "headers":
        return {"name": "x"}, 200, {"X-Extra": "yes"}
    if kind == "dict":
        return {"name": "plain"}
    return apis.x.Pet(name=kind)

def anything():
    return {"error": "teapot"}, 418
"""


@pytest.fixture
def client(services: ServiceMaker) -> FlaskClient:
    return services.client(SPEC, HANDLERS)


def test_every_problem_of_a_request_in_one_400(client: FlaskClient) -> None:
    response = client.put("/pets/abc?limit=99", json={"owner": {"name": 1}, "colour": "red"})
    assert response.status_code == 400
    body = response.json
    assert body["status"] == 400
    assert body["error"] == "INVALID_PARAMETER"
    assert body["error_id"]
    fields = {problem["field"]: problem["message"] for problem in body["errors"]}
    assert fields.keys() == {"/path/id", "/query/limit", "/header/X-Token", "/body/name", "/body/owner/name", "/body/colour"}
    assert all(message for message in fields.values())
    assert "/query/limit" in body["error_description"]


def test_unknown_fields_are_accepted_when_the_config_says_so(services: ServiceMaker) -> None:
    client = services.client(SPEC, HANDLERS, config={"reject_unknown_fields": False})
    response = client.put("/pets/1", json={"name": "rex", "colour": "red", "owner": {"name": "ann", "age": 3}}, headers={"X-Token": "t"})
    assert response.status_code == 200, response.json
    assert response.json == {"name": "rex", "colour": "red", "owner": {"name": "ann", "age": 3}}


def test_a_response_of_the_wrong_shape_is_a_500_that_leaks_nothing(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="macaron"):
        response = client.get("/shape/wrong")
    assert response.status_code == 500
    body = response.json
    assert body["error"] == "BAD_RESPONSE"
    assert "internal detail" not in response.text and "secret" not in response.text and "/name" not in response.text
    assert body["error_id"] in caplog.text
    assert "/name" in caplog.text  # the details go to the log


def test_an_undeclared_status_is_a_bad_response(client: FlaskClient) -> None:
    response = client.get("/shape/undeclared")
    assert response.status_code == 500
    assert response.json["error"] == "BAD_RESPONSE"


def test_default_response_covers_undeclared_statuses(client: FlaskClient) -> None:
    response = client.get("/anything")
    assert response.status_code == 418
    assert response.json == {"error": "teapot"}


def test_returning_a_model_picks_the_status_declared_for_it(client: FlaskClient) -> None:
    response = client.get("/shape/created-model")
    assert response.status_code == 201
    assert response.json == {"id": 7}
    response = client.get("/shape/rex")
    assert response.status_code == 200
    assert response.json == {"name": "rex"}
    assert response.mimetype == "application/json"


def test_model_and_status_tuples_and_headers(client: FlaskClient) -> None:
    response = client.get("/shape/tuple")
    assert (response.status_code, response.json) == (201, {"id": 8})
    response = client.get("/shape/headers")
    assert response.status_code == 200
    assert response.headers["X-Extra"] == "yes"


def test_none_for_a_response_without_schema(client: FlaskClient) -> None:
    response = client.get("/shape/none")
    assert response.status_code == 204
    assert response.data == b""
    assert client.get("/shape/body-on-204").status_code == 500


def test_plain_dict_is_validated_too(client: FlaskClient) -> None:
    assert client.get("/shape/dict").json == {"name": "plain"}


def test_response_rejects_unknown_fields(services: ServiceMaker) -> None:
    client = services.client(
        SPEC,
        HANDLERS.replace('return {"name": "plain"}', 'return {"name": "plain", "password": "hunter2"}'),
    )
    response = client.get("/shape/dict")
    assert response.status_code == 500
    assert "hunter2" not in response.text



def test_python_values_json_has_no_form_for(services: ServiceMaker) -> None:
    spec = """
paths:
  /v/{kind}:
    get:
      x-bind-server: HANDLERS.value
      parameters: [{name: kind, in: path, required: true, type: string}]
      responses:
        200:
          description: ok
          schema:
            type: object
            properties:
              id: {type: string, format: uuid}
              price: {type: number}
              count: {type: integer}
"""
    handlers = """
import decimal, uuid

def value(kind):
    if kind == "db":
        return {"id": uuid.UUID(int=1), "price": decimal.Decimal("9.95"), "count": decimal.Decimal("3")}
    return {"id": {"a", "set"}}
"""
    client = services.client(spec, handlers)
    response = client.get("/v/db")
    assert response.status_code == 200, response.json
    assert response.json == {"id": "00000000-0000-0000-0000-000000000001", "price": 9.95, "count": 3}
    response = client.get("/v/set")
    assert response.status_code == 500
    assert response.json["error"] == "BAD_RESPONSE"


def test_objects_declared_open_accept_unknown_fields(services: ServiceMaker) -> None:
    spec = """
paths:
  /open:
    post:
      x-bind-server: HANDLERS.echo
      parameters:
        - name: payload
          in: body
          schema:
            type: object
            properties:
              meta: {type: object, x-open: true, properties: {v: {type: integer}}}
              tags: {type: object, additionalProperties: true, properties: {a: {type: string}}}
              strict: {type: object, properties: {v: {type: integer}}}
      responses:
        200: {description: ok, schema: {type: object, additionalProperties: true}}
"""
    handlers = """
def echo(payload):
    return payload.to_json()
"""
    client = services.client(spec, handlers)
    body = {"meta": {"v": 1, "extra": True}, "tags": {"a": "x", "b": "y"}}
    assert client.post("/open", json=body).json == body
    response = client.post("/open", json={"meta": {"v": "one"}, "strict": {"v": 1, "extra": True}})
    assert response.status_code == 400
    assert {problem["field"] for problem in response.json["errors"]} == {"/body/meta/v", "/body/strict/extra"}
