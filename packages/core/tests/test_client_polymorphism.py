"""Clients and polymorphism over real HTTP: a keeper service calls a pets service (both under gunicorn) whose Pet has a discriminator."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from macaron.client import BadClientRequest, BadRemoteResponse, RemoteError, load_clients
from macaron.models import apis
from servers import gunicorn_service

# The pets service's spec. Pet is a oneOf picked by "kind" through a mapping; a Cat's
# toys are a Toy hierarchy (allOf) picked by "toyType", the definition's name.
PETS = """\
openapi: 3.0.3
info: {title: pets, version: '1'}
paths:
  /pets:
    post:
      operationId: add_pet
      x-bind-server: pets_api.add_pet
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Pet'}
      responses:
        '201':
          description: the pet, as stored
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Pet'}
    get:
      operationId: list_pets
      x-bind-server: pets_api.list_pets
      responses:
        '200':
          description: every pet
          content:
            application/json:
              schema: {type: array, items: {$ref: '#/components/schemas/Pet'}}
  /pets/{name}:
    get:
      operationId: get_pet
      x-bind-server: pets_api.get_pet
      parameters:
        - {name: name, in: path, required: true, schema: {type: string}}
      responses:
        '200':
          description: the pet
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Pet'}
  /arrivals:
    get:
      operationId: arrivals
      x-bind-server: pets_api.arrivals
      responses:
        '200':
          description: the model class each added pet arrived as, by name
          content:
            application/json:
              schema: {type: object, additionalProperties: {type: string}}
components:
  schemas:
    Pet:
      oneOf:
        - $ref: '#/components/schemas/Cat'
        - $ref: '#/components/schemas/Dog'
        - $ref: '#/components/schemas/Bird'
      discriminator:
        propertyName: kind
        mapping: {cat: '#/components/schemas/Cat', dog: Dog, bird: Bird}
    Cat:
      type: object
      required: [kind, name, lives]
      properties:
        kind: {type: string}
        name: {type: string}
        lives: {type: integer}
        born: {type: string, format: date}
        toys: {type: array, items: {$ref: '#/components/schemas/Toy'}}
    Dog:
      type: object
      required: [kind, name]
      properties:
        kind: {type: string}
        name: {type: string}
        goodBoy: {type: boolean}
    Toy:
      type: object
      required: [toyType]
      discriminator: {propertyName: toyType}
      properties:
        toyType: {type: string}
        colour: {type: string}
    Ball:
      allOf:
        - $ref: '#/components/schemas/Toy'
        - properties: {size: {type: number}}
    Rope:
      allOf:
        - $ref: '#/components/schemas/Toy'
        - properties: {length: {type: number}}
    Bird:
      type: object
      required: [kind, name]
      properties:
        kind: {type: string}
        name: {type: string}
        wingspan: {type: number}
"""

# The keeper's copy is older: it predates Bird, which the pets service now sends.
KEEPER_COPY = PETS.split("    Bird:\n")[0].replace("        - $ref: '#/components/schemas/Bird'\n", "").replace(", bird: Bird", "")

PETS_API = """
from typing import Any

from macaron import apis

_pets: dict[str, Any] = {}
_arrivals: dict[str, str] = {}
# A pet of a kind added to the spec after the keeper's copy was taken.
_aviary = {"Tweety": {"kind": "bird", "name": "Tweety", "wingspan": 0.2}}
# A bug of the pets service: a kind no spec knows (its own response check stops it).
_aquarium = {"Nemo": {"kind": "fish", "name": "Nemo"}}


def add_pet(body):
    _arrivals[body.name] = type(body).__name__
    _pets[body.name] = body.to_json()
    return body, 201


def list_pets():
    return list(_pets.values())


def get_pet(name):
    return _pets.get(name) or _aviary.get(name) or _aquarium[name]


def arrivals():
    return _arrivals
"""

KEEPER = """\
swagger: '2.0'
info: {title: keeper, version: '1'}
basePath: /keeper
produces: [application/json]
consumes: [application/json]
paths:
  /cats:
    post:
      x-bind-server: keeper_api.adopt_cat
      parameters:
        - {name: name, in: query, required: true, type: string}
      responses:
        200: {description: what was sent and what came back, schema: {type: object, additionalProperties: true}}
  /census:
    get:
      x-bind-server: keeper_api.census
      responses:
        200: {description: each pet's class, schema: {type: object, additionalProperties: {type: string}}}
  /pets/{name}:
    get:
      x-bind-server: keeper_api.show
      parameters:
        - {name: name, in: path, required: true, type: string}
      responses:
        200: {description: the pet, schema: {type: object, additionalProperties: true}}
"""

KEEPER_API = """
import datetime as dt

from macaron import apis


def adopt_cat(name):
    pets = apis.pets
    cat = pets.Cat(kind="cat", name=name, lives=9, born=dt.date(2020, 2, 29), toys=[pets.Ball(size=2.0), pets.Rope(length=1.5)])
    back = pets.client.add_pet(cat)
    return {"returned": type(back).__name__, "born": back.born.isoformat(), "toys": [type(toy).__name__ for toy in back.toys]}


def census():
    return {pet.name: type(pet).__name__ for pet in apis.pets.client.list_pets()}


def show(name):
    return apis.pets.client.get_pet(name=name).to_json()
"""


def write_service(root: Path, config: str, files: dict[str, str]) -> Path:
    (root / "apis").mkdir(parents=True)
    (root / "macaron.yaml").write_text(config)
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    return root


@pytest.fixture(scope="module")
def pets_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = write_service(tmp_path_factory.mktemp("pets"), "name: pets\n", {"apis/pets.yaml": PETS, "pets_api.py": PETS_API})
    with gunicorn_service(root) as url:
        yield url


@pytest.fixture(scope="module")
def keeper_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = "name: keeper\nclients:\n  pets: {url_env: PETS_URL, retries: 0}\n"
    return write_service(tmp_path_factory.mktemp("keeper"), config, {"apis/keeper.yaml": KEEPER, "apis/pets.yaml": KEEPER_COPY, "keeper_api.py": KEEPER_API})


@pytest.fixture(scope="module")
def keeper_url(keeper_root: Path, pets_url: str) -> Iterator[str]:
    with gunicorn_service(keeper_root, env={"PETS_URL": pets_url}) as url:
        yield url


@pytest.fixture
def pets(keeper_root: Path, pets_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The keeper's client of the pets service, used from this process as a script would."""
    monkeypatch.setenv("PETS_URL", pets_url)
    return load_clients(keeper_root)["pets"]


def test_a_service_sends_a_subtype_where_the_base_is_declared_and_gets_the_subtype_back(keeper_url: str, pets_url: str) -> None:
    response = requests.post(f"{keeper_url}/keeper/cats", params={"name": "Tom"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json() == {"returned": "Cat", "born": "2020-02-29", "toys": ["Ball", "Rope"]}
    # The pets service received a Cat, toys and all.
    assert requests.get(f"{pets_url}/arrivals", timeout=5).json()["Tom"] == "Cat"
    assert requests.get(f"{pets_url}/pets/Tom", timeout=5).json()["toys"] == [{"toyType": "Ball", "size": 2.0}, {"toyType": "Rope", "length": 1.5}]


def test_a_list_of_the_base_comes_back_as_each_ones_subtype(pets: Any) -> None:
    pets.add_pet(apis.pets.Dog(kind="dog", name="Rex", goodBoy=True))
    pets.add_pet({"kind": "cat", "name": "Kit", "lives": 3, "toys": [{"toyType": "Toy"}]})
    listed = {pet.name: pet for pet in pets.list_pets()}
    assert type(listed["Rex"]) is apis.pets.Dog and listed["Rex"].goodBoy is True
    assert type(listed["Kit"]) is apis.pets.Cat and type(listed["Kit"].toys[0]) is apis.pets.Toy
    assert isinstance(pets.get_pet(name="Kit").toys[0], apis.pets.Toy)
    assert {"Rex": "Dog", "Kit": "Cat"}.items() <= requests.get(f"{pets.base_url}/arrivals", timeout=5).json().items()


def test_a_subtype_is_checked_as_itself_before_it_is_sent(pets: Any, pets_url: str) -> None:
    def refused(body: Any) -> dict[str, str]:
        with pytest.raises(BadClientRequest) as raised:
            pets.add_pet(body)
        return {problem["field"]: problem["message"] for problem in raised.value.extra["errors"]}

    assert refused(apis.pets.Cat(kind="cat", name="Nine")) == {"/body/lives": "is required"}
    assert refused(apis.pets.Dog(kind="dog", name="Odd", goodBoy="yes")) == {"/body/goodBoy": '"yes" is not of type "boolean"'}
    assert refused({"kind": "dog", "name": "Rex", "lives": 9}) == {"/body/lives": "is not allowed here (unknown field)"}
    assert refused({"kind": "fish", "name": "Nemo"}) == {"/body/kind": '"fish" is not one of "cat", "dog" (the discriminator of Pet)'}
    # A oneOf alternative built in Python does not know which value names it: the mapping may give it any.
    assert refused(apis.pets.Dog(name="Rex")) == {"/body/kind": 'is required (the discriminator of Pet: one of "cat", "dog")'}
    assert refused(apis.pets.Cat(kind="cat", name="Tom", lives=1, toys=[{"toyType": "Kite"}])) == {
        "/body/toys/0/toyType": '"Kite" is not one of "Toy", "Ball", "Rope" (the discriminator of Toy)'
    }
    assert "Nine" not in requests.get(f"{pets_url}/arrivals", timeout=5).json()


def test_an_unknown_discriminator_value_from_the_remote_is_a_bad_remote_response(pets: Any, keeper_url: str, pets_url: str) -> None:
    assert requests.get(f"{pets_url}/pets/Tweety", timeout=5).json()["kind"] == "bird"  # valid for the pets service's spec
    with pytest.raises(BadRemoteResponse) as raised:
        pets.get_pet(name="Tweety")
    message = str(raised.value)
    assert f"pets.get_pet: {pets_url}/pets/Tweety answered a 200 body that breaks the spec" in message
    assert '/kind: "bird" is not one of "cat", "dog" (the discriminator of Pet)' in message
    # Left uncaught in an endpoint, it is the keeper's 502.
    response = requests.get(f"{keeper_url}/keeper/pets/Tweety", timeout=10)
    assert response.status_code == 502
    assert response.json()["error"] == "BAD_REMOTE_RESPONSE"


def test_a_remote_refusing_its_own_unknown_discriminator_value_is_raised_as_its_error(pets: Any, keeper_url: str) -> None:
    with pytest.raises(RemoteError) as raised:
        pets.get_pet(name="Nemo")
    error = raised.value
    assert (error.status, error.code) == (500, "BAD_RESPONSE")
    assert error.error_id and "does not match its API spec" in error.description
    # Left uncaught in the keeper's endpoint: the keeper answers with the pets service's status and code.
    response = requests.get(f"{keeper_url}/keeper/pets/Nemo", timeout=10)
    assert (response.status_code, response.json()["error"]) == (500, "BAD_RESPONSE")
