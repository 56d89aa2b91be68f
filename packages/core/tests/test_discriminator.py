"""Polymorphism: a body, property or response declared as a base schema carries the subtype its discriminator names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from macaron import apis
from macaron.errors import ModelValidationError
from macaron.spec import SpecError
from service_maker import ServiceMaker

# -- Swagger 2.0: a base with a discriminator, subtypes extending it with allOf ------------------------

SWAGGER = """
paths:
  /pets:
    post:
      x-bind-server: HANDLERS.describe
      parameters:
        - {name: pet, in: body, required: true, schema: {$ref: '#/definitions/Pet'}}
      responses:
        200: {description: what arrived, schema: {type: object, additionalProperties: true}}
  /owners:
    post:
      x-bind-server: HANDLERS.describe_owner
      parameters:
        - {name: owner, in: body, required: true, schema: {$ref: '#/definitions/Owner'}}
      responses:
        200: {description: what arrived, schema: {type: object, additionalProperties: true}}
  /adopt:
    post:
      operationId: adopt
      x-bind-server: HANDLERS.adopt
      parameters:
        - {name: wanted, in: query, type: string, required: true}
      responses:
        200: {description: not this one, schema: {type: object, additionalProperties: true}}
        202: {description: the pet, schema: {$ref: '#/definitions/Pet'}}
  /litter:
    get:
      operationId: litter
      x-bind-server: HANDLERS.litter
      responses:
        200: {description: pets, schema: {type: array, items: {$ref: '#/definitions/Pet'}}}
definitions:
  Pet:
    type: object
    discriminator: petType
    required: [name, petType]
    properties:
      name: {type: string}
      petType: {type: string}
  Cat:
    description: a cat
    allOf:
      - $ref: '#/definitions/Pet'
      - type: object
        required: [huntingSkill]
        properties:
          huntingSkill: {type: string, enum: [clueless, lazy, aggressive]}
  Lion:
    allOf:
      - $ref: '#/definitions/Cat'
      - type: object
        properties:
          pride: {type: integer}
  Dog:
    allOf:
      - $ref: '#/definitions/Pet'
      - type: object
        properties:
          packSize: {type: integer, minimum: 0}
  Owner:
    type: object
    required: [pets]
    properties:
      pets: {type: array, items: {$ref: '#/definitions/Pet'}}
      favourite: {$ref: '#/definitions/Pet'}
"""

HANDLERS = """
from macaron import apis


def describe(pet):
    return {"class": type(pet).__name__, "is_pet": isinstance(pet, apis.x.Pet), "data": pet.to_json()}


def describe_owner(owner):
    favourite = owner.favourite
    return {"pets": [type(pet).__name__ for pet in owner.pets], "favourite": type(favourite).__name__ if favourite else None}


def adopt(wanted):
    if wanted == "cat":
        return apis.x.Cat(name="Tom", huntingSkill="lazy")
    if wanted == "lion":
        return apis.x.Lion(name="Leo", huntingSkill="aggressive", pride=3)
    if wanted == "half-cat":
        return {"petType": "Cat", "name": "Tom"}, 202
    if wanted == "dog-with-claws":
        return {"petType": "Dog", "name": "Rex", "huntingSkill": "lazy"}, 202
    return {"petType": "Pet", "name": "Generic"}, 202


def litter():
    return [apis.x.Cat(name="a", huntingSkill="clueless"), apis.x.Dog(name="b", packSize=2), {"petType": "Lion", "name": "c", "huntingSkill": "lazy"}]
"""


def errors_of(response: Any) -> dict[str, str]:
    assert response.status_code == 400, response.json
    return {problem["field"]: problem["message"] for problem in response.json["errors"]}


@pytest.fixture
def swagger(services: ServiceMaker) -> Flask:
    return services.app(SWAGGER, HANDLERS)


def test_a_body_declared_as_the_base_arrives_as_the_subtype_its_discriminator_names(swagger: Flask) -> None:
    client = swagger.test_client()
    response = client.post("/pets", json={"petType": "Cat", "name": "Tom", "huntingSkill": "lazy"})
    assert response.status_code == 200, response.json
    assert response.json == {"class": "Cat", "is_pet": True, "data": {"petType": "Cat", "name": "Tom", "huntingSkill": "lazy"}}
    assert client.post("/pets", json={"petType": "Lion", "name": "Leo", "huntingSkill": "lazy", "pride": 4}).json["class"] == "Lion"
    assert client.post("/pets", json={"petType": "Dog", "name": "Rex"}).json["class"] == "Dog"
    # Swagger 2.0: the base's own name is a value too, and selects the base.
    assert client.post("/pets", json={"petType": "Pet", "name": "Generic"}).json["class"] == "Pet"


def test_the_body_is_validated_against_the_subtype_it_names(swagger: Flask) -> None:
    client = swagger.test_client()
    assert errors_of(client.post("/pets", json={"petType": "Cat", "name": "Tom"})) == {"/body/huntingSkill": "is required"}
    # Each subtype rejects the others' fields: a Dog has no hunting skill, a plain Pet no pack.
    assert errors_of(client.post("/pets", json={"petType": "Dog", "name": "Rex", "packSize": -1, "huntingSkill": "lazy"})) == {
        "/body/packSize": "-1 is less than the minimum of 0",
        "/body/huntingSkill": "is not allowed here (unknown field)",
    }
    assert errors_of(client.post("/pets", json={"petType": "Pet", "name": "x", "packSize": 1})) == {"/body/packSize": "is not allowed here (unknown field)"}


def test_an_unknown_or_missing_discriminator_is_a_400_naming_the_property_and_the_values(swagger: Flask) -> None:
    client = swagger.test_client()
    response = client.post("/pets", json={"petType": "Fish", "name": "Nemo"})
    assert response.json["error"] == "INVALID_PARAMETER"
    assert errors_of(response) == {"/body/petType": '"Fish" is not one of "Pet", "Cat", "Lion", "Dog" (the discriminator of Pet)'}
    assert errors_of(client.post("/pets", json={"name": "Nemo"})) == {"/body/petType": 'is required (the discriminator of Pet: one of "Pet", "Cat", "Lion", "Dog")'}
    assert errors_of(client.post("/pets", json={"petType": 3, "name": "Nemo"})) == {"/body/petType": '3 is not one of "Pet", "Cat", "Lion", "Dog" (the discriminator of Pet)'}


def test_arrays_and_nested_properties_of_the_base_carry_subtypes(swagger: Flask) -> None:
    client = swagger.test_client()
    owner = {
        "pets": [{"petType": "Cat", "name": "a", "huntingSkill": "lazy"}, {"petType": "Dog", "name": "b"}, {"petType": "Pet", "name": "c"}],
        "favourite": {"petType": "Lion", "name": "d", "huntingSkill": "aggressive"},
    }
    response = client.post("/owners", json=owner)
    assert response.status_code == 200, response.json
    assert response.json == {"pets": ["Cat", "Dog", "Pet"], "favourite": "Lion"}
    owner["pets"][1]["huntingSkill"] = "lazy"  # type: ignore[index]
    owner["favourite"] = {"petType": "Lion", "name": "d"}
    owner["pets"].append({"petType": "Bird", "name": "e"})  # type: ignore[attr-defined]
    assert errors_of(client.post("/owners", json=owner)) == {
        "/body/pets/1/huntingSkill": "is not allowed here (unknown field)",
        "/body/pets/3/petType": '"Bird" is not one of "Pet", "Cat", "Lion", "Dog" (the discriminator of Pet)',
        "/body/favourite/huntingSkill": "is required",
    }


def test_a_subtype_returned_where_the_base_is_declared_is_sent_whole_with_the_bases_status(swagger: Flask) -> None:
    client = swagger.test_client()
    response = client.post("/adopt?wanted=cat")
    assert response.status_code == 202, response.json  # the status declared for Pet, not the lowest 2xx
    assert response.json == {"petType": "Cat", "name": "Tom", "huntingSkill": "lazy"}
    assert client.post("/adopt?wanted=lion").json == {"petType": "Lion", "name": "Leo", "huntingSkill": "aggressive", "pride": 3}
    assert client.post("/adopt?wanted=pet").json == {"petType": "Pet", "name": "Generic"}
    listed = client.get("/litter")
    assert listed.status_code == 200, listed.json
    assert [pet["petType"] for pet in listed.json] == ["Cat", "Dog", "Lion"]


def test_a_response_is_checked_against_the_subtype_it_names(swagger: Flask, caplog: pytest.LogCaptureFixture) -> None:
    client = swagger.test_client()
    for wanted, problem in (("half-cat", "/huntingSkill: is required"), ("dog-with-claws", "/huntingSkill: is not allowed here")):
        response = client.post(f"/adopt?wanted={wanted}")
        assert response.status_code == 500
        assert response.json["error"] == "BAD_RESPONSE"
        assert problem in caplog.text


def test_from_json_returns_the_subtype_model(swagger: Flask) -> None:
    Pet, Cat, Lion, Dog = apis.x.Pet, apis.x.Cat, apis.x.Lion, apis.x.Dog
    dog = Pet.from_json({"petType": "Dog", "name": "Rex", "packSize": 3})
    assert type(dog) is Dog and isinstance(dog, Pet) and dog.packSize == 3
    assert issubclass(Lion, Cat) and issubclass(Lion, Pet) and not issubclass(Dog, Cat)
    assert type(Cat.from_json({"petType": "Lion", "name": "Leo", "huntingSkill": "lazy"})) is Lion
    with pytest.raises(ModelValidationError) as raised:
        Cat.from_json({"petType": "Dog", "name": "Rex"})  # a Cat, or a Lion, but not a Dog
    assert raised.value.problems == [{"field": "/petType", "message": '"Dog" is not one of "Cat", "Lion" (the discriminator of Cat)'}]
    with pytest.raises(ModelValidationError) as raised:
        Pet.from_json({"petType": "Cat", "name": "Tom"})
    assert raised.value.problems == [{"field": "/huntingSkill", "message": "is required"}]
    # A subtype built in Python says what it is on the wire.
    cat = Cat(name="Tom", huntingSkill="lazy")
    assert cat.to_json() == {"petType": "Cat", "name": "Tom", "huntingSkill": "lazy"}
    cat.validate()
    assert Pet.from_json(cat.to_json()) == cat


def test_without_rejecting_unknown_fields_subtypes_still_dispatch(services: ServiceMaker) -> None:
    client = services.client(SWAGGER, HANDLERS, config={"reject_unknown_fields": False})
    response = client.post("/pets", json={"petType": "Lion", "name": "Leo", "huntingSkill": "lazy", "extra": 1})
    assert response.status_code == 200, response.json
    assert response.json["class"] == "Lion"
    assert errors_of(client.post("/pets", json={"petType": "Cat", "name": "Tom"})) == {"/body/huntingSkill": "is required"}


def test_a_client_gets_subtype_models_back(services: ServiceMaker) -> None:
    services.app(SWAGGER, HANDLERS, config={"clients": {"x": {"in_process": True, "serve": True}}})
    client = apis.x.client
    for pet in (client.adopt(wanted="cat"), client.adopt(wanted="lion")):
        assert isinstance(pet, apis.x.Cat) and isinstance(pet, apis.x.Pet)
    assert type(client.adopt(wanted="lion")) is apis.x.Lion
    assert [type(pet).__name__ for pet in client.litter()] == ["Cat", "Dog", "Lion"]


# -- OpenAPI 3: oneOf with a mapping, allOf hierarchies, inline oneOf --------------------------------

OPENAPI = """
openapi: OPENAPI_VERSION
info: {title: pets, version: '1'}
paths:
  /pets:
    post:
      x-bind-server: HANDLERS.describe
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Pet'}
      responses:
        '200':
          description: what arrived
          content:
            application/json:
              schema: {type: object, additionalProperties: true}
    get:
      x-bind-server: HANDLERS.listing
      responses:
        '200':
          description: pets of every kind
          content:
            application/json:
              schema: {type: array, items: {$ref: '#/components/schemas/Pet'}}
  /vehicles:
    post:
      x-bind-server: HANDLERS.describe
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Vehicle'}
      responses:
        '200':
          description: what arrived
          content:
            application/json:
              schema: {type: object, additionalProperties: true}
  /shapes:
    post:
      x-bind-server: HANDLERS.describe
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [shape]
              properties: {shape: {type: string, minLength: 5}}
              oneOf: [{$ref: '#/components/schemas/Circle'}, {$ref: '#/components/schemas/Square'}]
              discriminator: {propertyName: shape}
      responses:
        '200':
          description: what arrived
          content:
            application/json:
              schema: {type: object, additionalProperties: true}
components:
  schemas:
    Pet:
      oneOf:
        - $ref: '#/components/schemas/Cat'
        - $ref: '#/components/schemas/Dog'
      discriminator:
        propertyName: kind
        mapping:
          cat: '#/components/schemas/Cat'
          dog: Dog
    Cat:
      type: object
      required: [kind, name]
      properties:
        kind: {type: string}
        name: {type: string}
        indoor: {type: boolean}
    Dog:
      type: object
      required: [kind, name]
      properties:
        kind: {type: string}
        name: {type: string}
        goodBoy: {type: boolean}
    Vehicle:
      type: object
      required: [type, wheels]
      discriminator:
        propertyName: type
        mapping: {car: '#/components/schemas/Car'}
      properties:
        type: {type: string, enum: [car, Truck]}
        wheels: {type: integer}
    Car:
      allOf:
        - $ref: '#/components/schemas/Vehicle'
        - type: object
          properties:
            seats: {type: integer}
    Truck:
      allOf:
        - $ref: '#/components/schemas/Vehicle'
        - type: object
          required: [load]
          properties:
            load: {type: number}
    Circle:
      type: object
      required: [shape, radius]
      properties:
        shape: {type: string}
        radius: {type: number}
    Square:
      type: object
      required: [shape, side]
      properties:
        shape: {type: string}
        side: {type: number}
"""

OPENAPI_HANDLERS = """
from macaron import apis


def describe(body):
    return {"class": type(body).__name__, "data": body.to_json()}


def listing():
    return [apis.x.Cat(kind="cat", name="Tom"), {"kind": "dog", "name": "Rex", "goodBoy": True}]
"""


@pytest.fixture(params=["3.0.3", "3.1.0"])
def openapi(services: ServiceMaker, request: pytest.FixtureRequest) -> Flask:
    return services.app(OPENAPI.replace("OPENAPI_VERSION", request.param), OPENAPI_HANDLERS, header=False)


def test_openapi_one_of_with_a_mapping_dispatches_on_the_mapped_values(openapi: Flask) -> None:
    client = openapi.test_client()
    response = client.post("/pets", json={"kind": "cat", "name": "Tom", "indoor": True})
    assert response.status_code == 200, response.json
    assert response.json == {"class": "Cat", "data": {"kind": "cat", "name": "Tom", "indoor": True}}
    assert client.post("/pets", json={"kind": "dog", "name": "Rex"}).json["class"] == "Dog"
    # Cat and Dog both fit {"kind", "name"}: a plain oneOf would refuse this; the discriminator picks one.
    assert errors_of(client.post("/pets", json={"kind": "dog", "name": "Rex", "indoor": True})) == {"/body/indoor": "is not allowed here (unknown field)"}
    # A mapped schema is reached by its mapping value only.
    assert errors_of(client.post("/pets", json={"kind": "Cat", "name": "Tom"})) == {"/body/kind": '"Cat" is not one of "cat", "dog" (the discriminator of Pet)'}
    assert errors_of(client.post("/pets", json={"name": "Tom"})) == {"/body/kind": 'is required (the discriminator of Pet: one of "cat", "dog")'}
    listed = client.get("/pets")
    assert listed.status_code == 200, listed.json
    assert listed.json == [{"kind": "cat", "name": "Tom"}, {"kind": "dog", "name": "Rex", "goodBoy": True}]
    pet = apis.x.Pet.from_json({"kind": "dog", "name": "Rex"})
    assert type(pet) is apis.x.Dog


def test_openapi_hierarchy_mixes_mapped_and_named_subtypes_and_an_abstract_base(openapi: Flask) -> None:
    client = openapi.test_client()
    response = client.post("/vehicles", json={"type": "car", "wheels": 4, "seats": 5})
    assert response.status_code == 200, response.json
    assert response.json["class"] == "Car"
    assert client.post("/vehicles", json={"type": "Truck", "wheels": 6, "load": 9.5}).json["class"] == "Truck"
    assert errors_of(client.post("/vehicles", json={"type": "Truck", "wheels": 6})) == {"/body/load": "is required"}
    # Vehicle's own enum leaves "Vehicle" out: the base is abstract; "Car" is mapped as "car".
    assert errors_of(client.post("/vehicles", json={"type": "Vehicle", "wheels": 4})) == {"/body/type": '"Vehicle" is not one of "car", "Truck" (the discriminator of Vehicle)'}
    assert isinstance(apis.x.Vehicle.from_json({"type": "car", "wheels": 4}), apis.x.Car)
    assert issubclass(apis.x.Truck, apis.x.Vehicle)


def test_openapi_inline_one_of_without_mapping_uses_schema_names(openapi: Flask) -> None:
    client = openapi.test_client()
    response = client.post("/shapes", json={"shape": "Circle", "radius": 2})
    assert response.status_code == 200, response.json
    assert response.json == {"class": "Circle", "data": {"shape": "Circle", "radius": 2}}
    assert errors_of(client.post("/shapes", json={"shape": "Square", "radius": 2})) == {
        "/body/side": "is required",
        "/body/radius": "is not allowed here (unknown field)",
    }
    # The keywords beside the oneOf apply too (a minLength here); a property they also require is reported once.
    oval = client.post("/shapes", json={"shape": "Oval"})
    assert oval.status_code == 400
    assert sorted(problem["message"] for problem in oval.json["errors"] if problem["field"] == "/body/shape") == [
        '"Oval" is not one of "Circle", "Square" (the discriminator)',
        '"Oval" is shorter than 5 characters',
    ]
    assert errors_of(client.post("/shapes", json={"radius": 1})) == {"/body/shape": 'is required (the discriminator: one of "Circle", "Square")'}


# -- start-up errors -----------------------------------------------------------------------------------


def start_error(services: ServiceMaker, spec: str, **kwargs: Any) -> SpecError:
    with pytest.raises(SpecError) as raised:
        services.app(spec, HANDLERS, **kwargs)
    return raised.value


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("discriminator: petType", "the discriminator 'kind' of 'Pet' is not one of its properties"),
        ("required: [name, petType]", "the discriminator 'petType' of 'Pet' must be in its 'required' list (Swagger 2.0 requires it)"),
        ("petType: {type: string}", "the discriminator 'petType' of 'Pet' must be a string property, not \"integer\""),
    ],
)
def test_swagger_discriminator_must_be_a_required_string_property_of_the_base(services: ServiceMaker, change: str, message: str) -> None:
    broken = {
        "discriminator: petType": "discriminator: kind",
        "required: [name, petType]": "required: [name]",
        "petType: {type: string}": "petType: {type: integer}",
    }[change]
    error = start_error(services, SWAGGER.replace(change, broken, 1))
    assert error.reason == message
    assert error.pointer == "/definitions/Pet/discriminator"
    assert Path(error.file).name == "x.yaml"


def test_a_subtype_the_discriminator_cannot_name_is_a_start_up_error(services: ServiceMaker) -> None:
    error = start_error(services, SWAGGER.replace("petType: {type: string}", "petType: {type: string, enum: [Cat, Dog]}"))
    assert error.pointer == "/definitions/Lion"
    assert "no value of the discriminator 'petType' selects 'Lion'" in error.reason


def openapi_error(services: ServiceMaker, old: str, new: str) -> SpecError:
    spec = OPENAPI.replace("OPENAPI_VERSION", "3.0.3")
    assert old in spec
    return start_error(services, spec.replace(old, new, 1), header=False)


def test_openapi_mapping_to_a_schema_that_does_not_exist(services: ServiceMaker) -> None:
    error = openapi_error(services, "dog: Dog", "dog: Wolf")
    assert error.pointer == "/components/schemas/Pet/discriminator/mapping/dog"
    assert error.reason == "the discriminator mapping 'dog' of 'Pet' points to 'Wolf', which does not exist"
    error = openapi_error(services, "cat: '#/components/schemas/Cat'", "cat: '#/components/schemas/Kitten'")
    assert error.pointer == "/components/schemas/Pet/discriminator/mapping/cat"
    assert "points to '#/components/schemas/Kitten', which does not exist" in error.reason


def test_openapi_mapping_outside_the_alternatives_or_the_hierarchy(services: ServiceMaker) -> None:
    error = openapi_error(services, "dog: Dog", "dog: Circle")
    assert error.pointer == "/components/schemas/Pet/discriminator/mapping/dog"
    assert error.reason == "the discriminator mapping 'dog' of 'Pet' points to 'Circle', which is not one of its oneOf/anyOf alternatives"
    error = openapi_error(services, "mapping: {car: '#/components/schemas/Car'}", "mapping: {car: '#/components/schemas/Cat'}")
    assert error.pointer == "/components/schemas/Vehicle/discriminator/mapping/car"
    assert error.reason == "the discriminator mapping 'car' of 'Vehicle' points to 'Cat', which does not extend 'Vehicle' (allOf)"


def test_openapi_alternatives_must_be_references_declaring_the_property(services: ServiceMaker) -> None:
    error = openapi_error(services, "- $ref: '#/components/schemas/Dog'", "- {type: object, properties: {kind: {type: string}}}")
    assert error.pointer == "/components/schemas/Pet/oneOf/1"
    assert "each oneOf alternative must be a $ref" in error.reason
    error = openapi_error(services, "required: [kind, name]\n      properties:\n        kind: {type: string}\n        name: {type: string}\n        goodBoy", "required: [name]\n      properties:\n        name: {type: string}\n        goodBoy")
    assert error.pointer == "/components/schemas/Pet/discriminator"
    assert error.reason == "the discriminator 'kind' of 'Dog', one of the alternatives of 'Pet', is not one of its properties"
    error = openapi_error(services, "propertyName: type", "propertyName: colour")
    assert error.reason == "the discriminator 'colour' of 'Vehicle' is not one of its properties"
