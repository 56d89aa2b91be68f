"""Every Swagger type and format, in and out of a service."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient

from service_maker import ServiceMaker

SPEC = """
paths:
  /things:
    post:
      x-bind-server: HANDLERS.echo
      parameters:
        - {name: thing, in: body, required: true, schema: {$ref: '#/definitions/Thing'}}
      responses:
        200: {description: the thing, schema: {$ref: '#/definitions/Thing'}}
  /when/{day}:
    get:
      x-bind-server: HANDLERS.when
      parameters:
        - {name: day, in: path, required: true, type: string, format: date}
        - {name: at, in: query, type: string, format: date-time}
      responses:
        200: {description: ok, schema: {$ref: '#/definitions/When'}}
definitions:
  Thing:
    type: object
    required: [id]
    properties:
      id: {type: integer, format: int64}
      small: {type: integer, format: int32}
      ratio: {type: number, format: float}
      precise: {type: number, format: double}
      born: {type: string, format: date}
      seen: {type: string, format: date-time}
      blob: {type: string, format: byte}
      raw: {type: string, format: binary}
      color: {type: string, enum: [red, green]}
      flag: {type: boolean}
      note: {type: string, x-nullable: true}
      strict: {type: string}
      owner: {$ref: '#/definitions/Owner'}
      maybe_owner: {$ref: '#/definitions/Owner', x-nullable: true}
      tags: {type: array, items: {type: string}, maxItems: 3}
      owners: {type: array, items: {$ref: '#/definitions/Owner'}}
      scores: {type: object, additionalProperties: {type: integer}}
      meetings: {type: object, additionalProperties: {type: string, format: date}}
      extra:
        type: object
        properties:
          depth: {type: integer}
  Owner:
    type: object
    required: [name]
    properties:
      name: {type: string}
  When:
    type: object
    properties:
      day: {type: string, format: date}
      at: {type: string, format: date-time}
      next: {type: string, format: date}
"""

HANDLERS = """
import datetime as dt

def echo(thing):
    assert isinstance(thing.born, dt.date) or thing.born is None
    assert isinstance(thing.seen, dt.datetime) or thing.seen is None
    if thing.meetings:
        assert all(isinstance(day, dt.date) for day in thing.meetings.values())
        thing.meetings["fri"] = dt.date(2024, 1, 5)  # a typed map writes through to the model
        assert thing.to_json()["meetings"]["fri"] == "2024-01-05"
        del thing.meetings["fri"]
        assert "fri" not in thing.to_json()["meetings"]
    if thing.owner is not None:
        assert thing.owner.name
    return thing

def when(day, at):
    assert type(day) is dt.date, type(day)
    assert at is None or isinstance(at, dt.datetime)
    return {"day": day, "at": at, "next": day + dt.timedelta(days=1)}
"""


@pytest.fixture
def client(services: ServiceMaker) -> FlaskClient:
    return services.client(SPEC, HANDLERS)


def problems(response: Any) -> dict[str, str]:
    assert response.status_code == 400, response.json
    assert response.json["error"] == "INVALID_PARAMETER"
    return {problem["field"]: problem["message"] for problem in response.json["errors"]}


def test_a_full_object_round_trips(client: FlaskClient) -> None:
    thing = {
        "id": 2**40,
        "small": -(2**31),
        "ratio": 0.5,
        "precise": 1e-300,
        "born": "2001-02-03",
        "seen": "2001-02-03T04:05:06Z",
        "blob": "aGVsbG8=",
        "raw": "\x00\x01",
        "color": "red",
        "flag": True,
        "note": None,
        "owner": {"name": "ann"},
        "maybe_owner": None,
        "tags": ["a", "b"],
        "owners": [{"name": "bob"}],
        "scores": {"x": 1, "y": 2},
        "meetings": {"mon": "2024-01-01"},
        "extra": {"depth": 3},
    }
    response = client.post("/things", json=thing)
    assert response.status_code == 200, response.json
    assert response.json == thing


def test_int32_bounds_and_int64(client: FlaskClient) -> None:
    assert client.post("/things", json={"id": 1, "small": 2**31 - 1}).status_code == 200
    assert problems(client.post("/things", json={"id": 1, "small": 2**31})).keys() == {"/body/small"}
    assert problems(client.post("/things", json={"id": 2**63})).keys() == {"/body/id"}
    assert problems(client.post("/things", json={"id": 1.5})).keys() == {"/body/id"}


def test_wrong_types_and_formats_are_all_reported_at_once(client: FlaskClient) -> None:
    found = problems(
        client.post(
            "/things",
            json={
                "small": "1",
                "ratio": "x",
                "born": "2001-13-40",
                "seen": "yesterday",
                "color": "blue",
                "flag": "yes",
                "strict": None,
                "owner": {},
                "tags": ["a", "b", "c", "d"],
                "owners": [{"name": 1}],
                "scores": {"x": "high"},
                "extra": {"depth": "deep"},
            },
        )
    )
    assert found.keys() == {
        "/body/id",
        "/body/small",
        "/body/ratio",
        "/body/born",
        "/body/seen",
        "/body/color",
        "/body/flag",
        "/body/strict",
        "/body/owner/name",
        "/body/tags",
        "/body/owners/0/name",
        "/body/scores/x",
        "/body/extra/depth",
    }
    assert found["/body/id"] == "is required"
    assert found["/body/color"] == '"blue" is not one of "red", "green"'


def test_x_nullable_accepts_null_only_where_declared(client: FlaskClient) -> None:
    assert client.post("/things", json={"id": 1, "note": None, "maybe_owner": None}).status_code == 200
    found = problems(client.post("/things", json={"id": 1, "strict": None, "owner": None}))
    assert found.keys() == {"/body/strict", "/body/owner"}


def test_nullable_reference_reports_the_inner_problem(client: FlaskClient) -> None:
    assert problems(client.post("/things", json={"id": 1, "maybe_owner": {"name": 5}})).keys() == {"/body/maybe_owner/name"}


def test_dates_arrive_as_date_objects_and_leave_as_iso_strings(client: FlaskClient) -> None:
    response = client.get("/when/2024-02-28?at=2024-02-28T10:00:00%2B02:00")
    assert response.status_code == 200, response.json
    assert response.json == {"day": "2024-02-28", "at": "2024-02-28T10:00:00+02:00", "next": "2024-02-29"}
    assert problems(client.get("/when/2024-02-30")).keys() == {"/path/day"}


def test_naive_and_utc_datetimes_are_sent_in_iso_format(services: ServiceMaker) -> None:
    spec = """
paths:
  /t:
    get:
      x-bind-server: HANDLERS.t
      responses:
        200:
          description: ok
          schema:
            type: object
            properties:
              utc: {type: string, format: date-time}
              local: {type: string}
"""
    handlers = """
import datetime as dt

def t():
    return {"utc": dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "local": dt.datetime(2020, 1, 2, 3, 4, 5)}
"""
    response = services.client(spec, handlers).get("/t")
    assert response.status_code == 200, response.json
    assert response.json == {"utc": "2020-01-02T03:04:05Z", "local": "2020-01-02T03:04:05"}
    assert dt.datetime.fromisoformat(response.json["local"]) == dt.datetime(2020, 1, 2, 3, 4, 5)


ALLOF_SPEC = """
paths:
  /animals:
    post:
      x-bind-server: HANDLERS.animal
      parameters:
        - {name: animal, in: body, required: true, schema: {$ref: '#/definitions/Animal'}}
      responses:
        200: {description: ok, schema: {$ref: '#/definitions/Animal'}}
  /puppies:
    post:
      x-bind-server: HANDLERS.animal
      parameters:
        - {name: puppy, in: body, required: true, schema: {$ref: '#/definitions/Puppy'}}
      responses:
        200: {description: ok, schema: {$ref: '#/definitions/Puppy'}}
  /dogs:
    post:
      x-bind-server: HANDLERS.dog
      parameters:
        - {name: dog, in: body, required: true, schema: {$ref: '#/definitions/Dog'}}
      responses:
        200: {description: ok, schema: {$ref: '#/definitions/Dog'}}
definitions:
  Animal:
    type: object
    required: [name]
    properties:
      name: {type: string}
  Dog:
    allOf:
      - $ref: '#/definitions/Animal'
      - type: object
        required: [bark]
        properties:
          bark: {type: string}
  Puppy:
    allOf:
      - $ref: '#/definitions/Dog'
      - properties:
          age: {type: integer, maximum: 1}
"""

ALLOF_HANDLERS = """
def animal(animal):
    return animal

def dog(dog):
    dog.bark = dog.bark.upper() + " from " + dog.name
    return dog
"""


def test_allof_composes_validation_and_model_fields(services: ServiceMaker) -> None:
    client = services.client(ALLOF_SPEC, ALLOF_HANDLERS)
    response = client.post("/dogs", json={"name": "rex", "bark": "woof"})
    assert response.status_code == 200, response.json
    assert response.json == {"name": "rex", "bark": "WOOF from rex"}
    assert problems(client.post("/dogs", json={})).keys() == {"/body/name", "/body/bark"}
    assert problems(client.post("/dogs", json={"name": "rex", "bark": "woof", "cat": 1})).keys() == {"/body/cat"}


def test_a_definition_used_as_an_allof_part_still_rejects_unknown_fields_on_its_own(services: ServiceMaker) -> None:
    client = services.client(ALLOF_SPEC, ALLOF_HANDLERS)
    assert client.post("/animals", json={"name": "rex"}).json == {"name": "rex"}
    assert problems(client.post("/animals", json={"name": "rex", "bark": "woof"})).keys() == {"/body/bark"}


def test_allof_over_several_levels(services: ServiceMaker) -> None:
    client = services.client(ALLOF_SPEC, ALLOF_HANDLERS)
    puppy = {"name": "rex", "bark": "yip", "age": 0}
    assert client.post("/puppies", json=puppy).json == puppy
    assert problems(client.post("/puppies", json={"name": "rex", "age": 2, "fur": "red"})).keys() == {"/body/bark", "/body/age", "/body/fur"}
