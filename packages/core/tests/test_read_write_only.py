"""readOnly and writeOnly: a property goes one way only, and is required only that way (Swagger 2.0, OpenAPI 3.0, 3.1)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from macaron import apis, service_of
from macaron.client import BadClientRequest, BadRemoteResponse, load_clients
from macaron.config import ConfigError
from macaron.spec import SpecError
from servers import gunicorn_service
from service_maker import ServiceMaker

HANDLERS = """
from macaron import apis

def create_pet(pet):
    data = pet.to_json()
    seen = {key: data[key] for key in ("id", "password") if key in data}  # what the handler got of the one-way fields
    return apis.x.Pet(id=7, name=pet.name, tags=[seen] if seen else None), 201

def show_pet(pet_id, leak=None, bare=None):
    if bare:
        return {"name": "Rex"}
    pet = apis.x.Pet(id=pet_id, name="Rex")
    if leak:
        pet["password"] = "s3cret"
    return pet

def create_owner(owner):
    return {"name": owner.name, "pets": [{"id": 1, "name": pet.name} for pet in owner.pets]}, 201

def create_audited(item):
    return {"createdAt": "2024-01-01", "name": item.name}, 201

def create_animal(animal):
    return {"kind": animal.kind, "id": 3, "name": animal.name}, 201
"""


def openapi(version: str) -> str:
    stamp = "{$ref: '#/components/schemas/Stamp', readOnly: true}" if version.startswith("3.1") else "{type: string, readOnly: true}"
    return f"""
openapi: {version}
info: {{title: x, version: '1'}}
paths:
  /pets:
    post:
      operationId: create_pet
      x-bind-server: HANDLERS.create_pet
      requestBody: {{required: true, content: {{application/json: {{schema: {{$ref: '#/components/schemas/Pet'}}}}}}}}
      responses: {{'201': {{description: created, content: {{application/json: {{schema: {{$ref: '#/components/schemas/Pet'}}}}}}}}}}
  /pets/{{pet_id}}:
    get:
      operationId: show_pet
      x-bind-server: HANDLERS.show_pet
      parameters:
        - {{name: pet_id, in: path, required: true, schema: {{type: integer}}}}
        - {{name: leak, in: query, schema: {{type: boolean}}}}
        - {{name: bare, in: query, schema: {{type: boolean}}}}
      responses: {{'200': {{description: the pet, content: {{application/json: {{schema: {{$ref: '#/components/schemas/Pet'}}}}}}}}}}
  /owners:
    post:
      operationId: create_owner
      x-bind-server: HANDLERS.create_owner
      requestBody: {{required: true, content: {{application/json: {{schema: {{$ref: '#/components/schemas/Owner'}}}}}}}}
      responses: {{'201': {{description: created, content: {{application/json: {{schema: {{$ref: '#/components/schemas/Owner'}}}}}}}}}}
  /audited:
    post:
      x-bind-server: HANDLERS.create_audited
      requestBody: {{required: true, content: {{application/json: {{schema: {{$ref: '#/components/schemas/Audited'}}}}}}}}
      responses: {{'201': {{description: created, content: {{application/json: {{schema: {{$ref: '#/components/schemas/Audited'}}}}}}}}}}
  /animals:
    post:
      operationId: create_animal
      x-bind-server: HANDLERS.create_animal
      requestBody: {{required: true, content: {{application/json: {{schema: {{$ref: '#/components/schemas/Animal'}}}}}}}}
      responses: {{'201': {{description: created, content: {{application/json: {{schema: {{$ref: '#/components/schemas/Animal'}}}}}}}}}}
components:
  schemas:
    Pet:
      type: object
      required: [id, name, password]
      properties:
        id: {{type: integer, readOnly: true}}
        name: {{type: string}}
        password: {{type: string, writeOnly: true}}
        tags: {{type: array, items: {{type: object, additionalProperties: true}}}}
    Owner:
      type: object
      required: [name, pets]
      properties:
        name: {{type: string}}
        pets: {{type: array, items: {{$ref: '#/components/schemas/Named'}}}}
    Named:
      type: object
      required: [id, name]
      properties:
        id: {{type: integer, readOnly: true}}
        name: {{type: string}}
    Stamp: {{type: string, format: date}}
    Stamped:
      type: object
      properties:
        createdAt: {stamp}
    Audited:
      allOf:
        - $ref: '#/components/schemas/Stamped'
        - type: object
          required: [createdAt, name]
          properties:
            name: {{type: string}}
    Animal:
      oneOf: [{{$ref: '#/components/schemas/Cat'}}, {{$ref: '#/components/schemas/Dog'}}]
      discriminator: {{propertyName: kind}}
    Cat:
      type: object
      required: [kind, id, name]
      properties:
        kind: {{type: string}}
        id: {{type: integer, readOnly: true}}
        name: {{type: string}}
    Dog:
      type: object
      required: [kind, name]
      properties:
        kind: {{type: string}}
        name: {{type: string}}
"""


READ_ONLY = "is read-only: the server sets it, a request may not send it"


def errors_of(response: Any) -> dict[str, str]:
    assert response.status_code == 400, response.json
    return {problem["field"]: problem["message"] for problem in response.json["errors"]}


@pytest.fixture(params=["3.0.3", "3.1.0"])
def service(request: pytest.FixtureRequest, services: ServiceMaker) -> Any:
    return services.client(openapi(request.param), HANDLERS, header=False)


def test_a_read_only_property_is_not_required_in_a_request_and_required_in_its_response(service: Any) -> None:
    created = service.post("/pets", json={"name": "Rex", "password": "pw"})
    assert created.status_code == 201, created.json
    assert created.json == {"id": 7, "name": "Rex", "tags": [{"password": "pw"}]}  # the handler got the write-only password
    assert service.get("/pets/3?bare=true").status_code == 500  # a response without its required id breaks the spec


def test_a_read_only_property_sent_in_a_request_is_refused_by_name(service: Any) -> None:
    assert errors_of(service.post("/pets", json={"id": 1, "name": "Rex", "password": "pw"})) == {"/body/id": READ_ONLY}
    assert errors_of(service.post("/owners", json={"name": "Ann", "pets": [{"name": "a"}, {"id": 2, "name": "b"}]})) == {"/body/pets/1/id": READ_ONLY}
    assert errors_of(service.post("/audited", json={"name": "x", "createdAt": "2024-01-01"})) == {"/body/createdAt": READ_ONLY}
    assert errors_of(service.post("/animals", json={"kind": "Cat", "id": 1, "name": "Tom"})) == {"/body/id": READ_ONLY}


def test_read_only_properties_required_through_references_and_compositions_are_required_only_in_responses(service: Any) -> None:
    owner = service.post("/owners", json={"name": "Ann", "pets": [{"name": "a"}]})
    assert owner.status_code == 201 and owner.json == {"name": "Ann", "pets": [{"id": 1, "name": "a"}]}
    assert service.post("/audited", json={"name": "x"}).json == {"createdAt": "2024-01-01", "name": "x"}  # required by the allOf's other part
    animal = service.post("/animals", json={"kind": "Cat", "name": "Tom"})
    assert animal.status_code == 201 and animal.json == {"kind": "Cat", "id": 3, "name": "Tom"}


def test_a_write_only_property_is_required_in_requests_and_never_sent_back(service: Any, caplog: pytest.LogCaptureFixture) -> None:
    assert errors_of(service.post("/pets", json={"name": "Rex"})) == {"/body/password": "is required"}
    assert service.get("/pets/3").json == {"id": 3, "name": "Rex"}  # not required in the response
    with caplog.at_level(logging.ERROR, logger="macaron"):
        leaked = service.get("/pets/3?leak=true")
    assert leaked.status_code == 500 and leaked.json["error"] == "BAD_RESPONSE" and "s3cret" not in leaked.text
    assert "/password: is write-only: a response may not carry it" in caplog.text


def test_read_only_properties_may_be_accepted_in_requests(services: ServiceMaker) -> None:
    client = services.client(openapi("3.0.3"), HANDLERS, header=False, config={"read_only_in_requests": "accept"})
    created = client.post("/pets", json={"id": 1, "name": "Rex", "password": "pw"})
    assert created.status_code == 201 and created.json["tags"] == [{"id": 1, "password": "pw"}]  # validated and passed on
    assert errors_of(client.post("/pets", json={"id": "one", "name": "Rex", "password": "pw"})) == {"/body/id": '"one" is not of type "integer"'}
    assert client.post("/pets", json={"name": "Rex", "password": "pw"}).status_code == 201  # still not required
    assert client.get("/pets/3?leak=true").status_code == 500  # write-only stays out of responses


def test_a_wrong_read_only_setting_stops_start_up(services: ServiceMaker) -> None:
    with pytest.raises(ConfigError, match="'read_only_in_requests' must be 'reject' or 'accept', not 'ignore'"):
        services.app(openapi("3.0.3"), HANDLERS, header=False, config={"read_only_in_requests": "ignore"})


SWAGGER = """
paths:
  /pets:
    post:
      x-bind-server: HANDLERS.create_pet
      parameters:
        - {name: pet, in: body, required: true, schema: {$ref: '#/definitions/Pet'}}
      responses:
        201: {description: created, schema: {$ref: '#/definitions/Pet'}}
  /pets/{pet_id}:
    get:
      x-bind-server: HANDLERS.show_pet
      parameters:
        - {name: pet_id, in: path, required: true, type: integer}
        - {name: leak, in: query, type: boolean}
        - {name: bare, in: query, type: boolean}
      responses:
        200: {description: the pet, schema: {$ref: '#/definitions/Pet'}}
definitions:
  Pet:
    type: object
    required: [id, name]
    properties:
      id: {type: integer, readOnly: true}
      name: {type: string}
      password: {type: string}
      tags: {type: array, items: {type: object, additionalProperties: true}}
"""


def test_swagger_2_read_only_properties(services: ServiceMaker) -> None:
    client = services.client(SWAGGER, HANDLERS)
    assert errors_of(client.post("/pets", json={"id": 1, "name": "Rex"})) == {"/body/id": READ_ONLY}
    assert client.post("/pets", json={"name": "Rex"}).json == {"id": 7, "name": "Rex"}
    assert client.get("/pets/3?bare=true").status_code == 500


def test_swagger_2_has_no_write_only(services: ServiceMaker) -> None:
    with pytest.raises(SpecError, match=r"not a valid Swagger 2\.0 document"):
        services.app(SWAGGER.replace("password: {type: string}", "password: {type: string, writeOnly: true}"), HANDLERS)


def test_only_definitions_with_these_keywords_get_variants(services: ServiceMaker) -> None:
    plain = services.app(SWAGGER.replace(", readOnly: true", ""), HANDLERS)
    assert sorted(service_of(plain).apis["x"].definitions) == ["Pet"]  # compiled as before: nothing added
    marked = services.app(SWAGGER, HANDLERS)
    assert sorted(service_of(marked).apis["x"].definitions) == ["Pet", "Pet:request"]
    assert sorted(apis.x._models) == ["Pet"]  # a variant is no model of its own


# -- clients: what they send is a request, what they get a response -------------------------


def test_a_client_checks_what_it_sends_as_a_request(services: ServiceMaker) -> None:
    root = services.write(openapi("3.1.0"), HANDLERS, header=False, config={"clients": {"x": {"in_process": True, "serve": True}}})
    services.build(root)
    client = apis.x.client
    pet = client.create_pet(apis.x.Pet(name="Rex", password="pw"))  # no id: the server sets it
    assert (type(pet).__name__, pet.id, pet.name, pet.password) == ("Pet", 7, "Rex", None)
    with pytest.raises(BadClientRequest) as raised:
        client.create_pet(apis.x.Pet(id=1, name="Rex", password="pw"))
    assert raised.value.extra["errors"] == [{"field": "/body/id", "message": READ_ONLY}]
    with pytest.raises(BadClientRequest) as raised:
        client.create_pet(apis.x.Pet(name="Rex"))
    assert raised.value.extra["errors"] == [{"field": "/body/password", "message": "is required"}]
    # readOnly beside a $ref (3.1) marks the property and keeps what it names: a date comes out as a date.
    assert client.post__audited({"name": "x"}).createdAt == dt.date(2024, 1, 1)


@pytest.fixture
def remote(services: ServiceMaker) -> Iterator[str]:
    """A service whose spec lets its password out: its callers' copy says it is write-only."""
    leaky = openapi("3.0.3").replace("password: {type: string, writeOnly: true}", "password: {type: string}").replace("required: [id, name, password]", "required: [id, name]")
    with gunicorn_service(services.write(leaky, HANDLERS, header=False)) as url:
        yield url


def test_a_client_checks_what_it_gets_as_a_response(services: ServiceMaker, remote: str) -> None:
    caller = services.write(openapi("3.0.3"), HANDLERS, header=False, config={"clients": {"x": {"url": remote}}})
    client = load_clients(caller)["x"]
    assert client.show_pet(pet_id=3).id == 3
    with pytest.raises(BadRemoteResponse, match="/password: is write-only: a response may not carry it"):
        client.show_pet(pet_id=3, leak=True)
