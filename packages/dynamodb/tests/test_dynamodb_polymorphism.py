"""Polymorphic persisted models: a base with a discriminator stores its subtypes in its table, and each comes back as itself."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ddb_support import Services

from macaron.errors import ModelValidationError
from macaron.models import ApiModels
from macaron.spec import SpecError
from macaron_dynamodb import Attr, ItemNotFound, batch_write, tables_of, transaction

# Pet is stored in one table; Cat, Lion (a Cat) and Dog extend it. Every subtype has
# numbers of its own, integral floats among them: DynamoDB gives 4.0 back as "4".
ZOO = """
Pet:
  type: object
  discriminator: petType
  x-persist:
    table: pets
    hash_key: name
    indexes:
      by_type: {hash_key: petType, range_key: name}
  required: [name, petType]
  properties:
    name: {type: string}
    petType: {type: string}
    weight: {type: number}
    born: {type: string, format: date}
Cat:
  allOf:
    - $ref: '#/definitions/Pet'
    - type: object
      required: [lives]
      properties:
        lives: {type: integer}
        purr: {type: number}
        lastVet: {type: string, format: date-time}
        naps: {type: array, items: {type: number}}
Lion:
  allOf:
    - $ref: '#/definitions/Cat'
    - type: object
      properties:
        mane: {type: number}
        pride: {type: object, additionalProperties: {type: number}}
Dog:
  allOf:
    - $ref: '#/definitions/Pet'
    - type: object
      properties:
        packSize: {type: integer}
        speed: {type: number}
        walks: {type: array, items: {$ref: '#/definitions/Walk'}}
Walk:
  type: object
  properties:
    km: {type: number}
    at: {type: string, format: date-time}
Owner:
  type: object
  x-persist: {table: owners, hash_key: id}
  required: [id]
  properties:
    id: {type: string}
    pets: {type: array, items: {$ref: '#/definitions/Pet'}}
    favourite: {$ref: '#/definitions/Pet'}
    byName: {type: object, additionalProperties: {$ref: '#/definitions/Pet'}}
"""

CAT = {"petType": "Cat", "name": "Tom", "weight": 4.0, "born": "2020-02-29", "lives": 9, "purr": 2.0, "lastVet": "2024-05-01T10:20:30Z", "naps": [1.0, 2.5]}
LION = {"petType": "Lion", "name": "Leo", "weight": 190.0, "lives": 7, "mane": 30.0, "pride": {"size": 5.0}}
DOG = {"petType": "Dog", "name": "Rex", "weight": 30.0, "packSize": 3, "speed": 40.0, "walks": [{"km": 5.0, "at": "2024-05-02T08:00:00Z"}]}
PET = {"petType": "Pet", "name": "Blob", "weight": 1.0}


@pytest.fixture
def zoo(persisted: Any) -> ApiModels:
    models: ApiModels = persisted(ZOO)
    return models


def types_of(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: types_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [types_of(item) for item in value]
    return type(value).__name__


def normalised(value: Any) -> Any:
    """An attribute value with its numbers as DynamoDB gives them back: 4.0 as "4" (moto keeps "4.0" as written)."""
    if isinstance(value, dict):
        return {tag: format(Decimal(item).normalize(), "f") if tag == "N" else normalised(item) for tag, item in value.items()}
    if isinstance(value, list):
        return [normalised(item) for item in value]
    return value


def as_dynamodb_stores_them(models: ApiModels) -> None:
    """Rewrite every stored item with normalised numbers, so the decoding is tested the same on every server."""
    for table in tables_of(models):
        for item in table.backend.call("Scan", {"TableName": table.name}).get("Items", []):
            table.backend.call("PutItem", {"TableName": table.name, "Item": normalised(item)})


def assert_exact(model: Any, expected: dict[str, Any]) -> None:
    """Same data, and same Python types down to every number: 4.0 is not 4."""
    assert model.to_json() == expected
    assert types_of(model.to_json()) == types_of(expected)


def test_a_subtype_saved_through_the_base_table_loads_as_itself_with_its_own_types(zoo: ApiModels) -> None:
    zoo.Cat.from_json(CAT).save()
    zoo.Pet.from_json(LION).save()
    zoo.Dog.from_json(DOG).save()
    zoo.Pet.from_json(PET).save()
    as_dynamodb_stores_them(zoo)

    cat = zoo.Pet.load("Tom")
    assert type(cat) is zoo.Cat and isinstance(cat, zoo.Pet)
    assert_exact(cat, CAT)
    assert cat.purr == 2.0 and type(cat.purr) is float
    assert cat.lastVet == dt.datetime(2024, 5, 1, 10, 20, 30, tzinfo=dt.timezone.utc)
    assert cat.born == dt.date(2020, 2, 29)

    lion = zoo.Pet.load("Leo")
    assert type(lion) is zoo.Lion and isinstance(lion, zoo.Cat)
    assert_exact(lion, LION)

    dog = zoo.Pet.load("Rex")
    assert type(dog) is zoo.Dog
    assert_exact(dog, DOG)
    assert dog.walks[0].at == dt.datetime(2024, 5, 2, 8, tzinfo=dt.timezone.utc)

    blob = zoo.Pet.load("Blob")
    assert type(blob) is zoo.Pet
    assert_exact(blob, PET)


def test_a_subtype_built_in_python_stores_its_discriminator_and_is_checked_as_itself(zoo: ApiModels) -> None:
    zoo.Cat(name="Kit", lives=3, weight=2.0).save()
    assert zoo.Pet.load("Kit").to_json() == {"petType": "Cat", "name": "Kit", "lives": 3, "weight": 2.0}
    with pytest.raises(ModelValidationError) as caught:
        zoo.Cat(name="Nine").save()  # a Cat needs its lives
    assert caught.value.problems == [{"field": "/lives", "message": "is required"}]
    # A Cat relabelled as a Dog is no longer a Cat: its own class refuses to store it.
    cat = zoo.Cat(name="Odd", lives=1)
    cat.petType = "Dog"
    with pytest.raises(ModelValidationError) as caught:
        cat.save()
    assert caught.value.problems == [{"field": "/petType", "message": '"Dog" is not one of "Cat", "Lion" (the discriminator of Cat)'}]
    with pytest.raises(ItemNotFound):
        zoo.Pet.load("Odd")


def test_query_and_scan_give_each_item_as_its_subtype(zoo: ApiModels) -> None:
    batch_write(put=[zoo.Cat.from_json(CAT), zoo.Lion.from_json(LION), zoo.Dog.from_json(DOG), zoo.Pet.from_json(PET)])
    as_dynamodb_stores_them(zoo)

    scanned = {pet.name: pet for pet in zoo.Pet.scan().all()}
    assert {name: type(pet).__name__ for name, pet in scanned.items()} == {"Tom": "Cat", "Leo": "Lion", "Rex": "Dog", "Blob": "Pet"}
    for pet, expected in ((scanned["Tom"], CAT), (scanned["Leo"], LION), (scanned["Rex"], DOG), (scanned["Blob"], PET)):
        assert_exact(pet, expected)

    cats = list(zoo.Pet.query("Cat", index="by_type"))
    assert [type(cat) for cat in cats] == [zoo.Cat]
    assert_exact(cats[0], CAT)
    assert [pet.name for pet in zoo.Pet.scan(filter=Attr("speed") > 10)] == ["Rex"]
    assert [type(pet) for pet in zoo.Pet.batch_get(["Rex", "Tom", "Nobody"])] == [zoo.Dog, zoo.Cat]


def test_a_subtype_class_reads_only_its_own_kind(zoo: ApiModels) -> None:
    batch_write(put=[zoo.Cat.from_json(CAT), zoo.Lion.from_json(LION), zoo.Dog.from_json(DOG), zoo.Pet.from_json(PET)])

    assert type(zoo.Cat.load("Leo")) is zoo.Lion  # a Lion is a Cat
    with pytest.raises(ItemNotFound) as caught:
        zoo.Cat.load("Rex")
    assert caught.value.to_error()["error_description"] == "no Cat with name='Rex' (the item is a Dog)"
    with pytest.raises(ItemNotFound):
        zoo.Lion.load("Tom")

    assert sorted(cat.name for cat in zoo.Cat.scan().all()) == ["Leo", "Tom"]
    assert [dog.name for dog in zoo.Dog.scan().all()] == ["Rex"]
    assert [cat.name for cat in zoo.Cat.scan(filter=Attr("weight") > 100)] == ["Leo"]
    assert [pet.name for pet in zoo.Dog.query("Cat", index="by_type")] == []
    assert [type(pet) for pet in zoo.Cat.batch_get(["Rex", "Tom", "Leo"])] == [zoo.Cat, zoo.Lion]


def test_subtypes_take_part_in_transactions_through_the_base_table(zoo: ApiModels) -> None:
    with transaction() as tx:
        tx.save(zoo.Cat.from_json(CAT))
        tx.save(zoo.Dog.from_json(DOG))
    assert_exact(zoo.Pet.load("Tom"), CAT)
    dog = zoo.Dog.load("Rex")
    dog.delete()
    with pytest.raises(ItemNotFound):
        zoo.Pet.load("Rex")


def test_polymorphic_properties_of_a_persisted_model_come_back_as_their_subtypes(zoo: ApiModels) -> None:
    data = {"id": "o1", "pets": [CAT, DOG, PET, LION], "favourite": LION, "byName": {"Tom": CAT, "Rex": DOG}}
    zoo.Owner.from_json(data).save()
    as_dynamodb_stores_them(zoo)

    owner = zoo.Owner.load("o1")

    assert_exact(owner, data)
    assert [type(pet) for pet in owner.pets] == [zoo.Cat, zoo.Dog, zoo.Pet, zoo.Lion]
    assert type(owner.favourite) is zoo.Lion and owner.favourite.pride == {"size": 5.0}
    assert {name: type(pet) for name, pet in owner.byName.items()} == {"Tom": zoo.Cat, "Rex": zoo.Dog}
    assert owner.pets[1].walks[0].km == 5.0 and type(owner.pets[1].walks[0].km) is float


def test_the_base_table_is_listed_once(zoo: ApiModels) -> None:
    tables = tables_of(zoo)
    assert sorted(table.model._name for table in tables) == ["Owner", "Pet"]
    assert zoo.Cat._table is zoo.Pet._table  # type: ignore[attr-defined]


# -- where x-persist may sit ---------------------------------------------------------------------


@pytest.fixture
def offline(tmp_path: Path) -> Any:
    maker = Services(tmp_path, "http://127.0.0.1:9")
    yield maker
    maker.cleanup()


def test_x_persist_on_a_subtype_of_a_persisted_base_stops_start_up(offline: Services) -> None:
    spec = ZOO.replace("Lion:\n  allOf:", "Lion:\n  x-persist: {table: lions, hash_key: name}\n  allOf:")
    with pytest.raises(SpecError) as caught:
        offline.models(spec, create=False)
    assert caught.value.pointer == "/definitions/Lion/x-persist"
    assert caught.value.reason == "Lion extends Pet, which is persisted: a subtype is stored in its base's table (remove this x-persist)"


def test_subtypes_of_a_base_that_is_not_persisted_may_have_tables_of_their_own(offline: Services) -> None:
    spec = ZOO.replace("  x-persist:\n    table: pets\n    hash_key: name\n    indexes:\n      by_type: {hash_key: petType, range_key: name}\n", "")
    spec = spec.replace("Cat:\n  allOf:", "Cat:\n  x-persist: {table: cats, hash_key: name}\n  allOf:")
    spec = spec.replace("Dog:\n  allOf:", "Dog:\n  x-persist: {table: dogs, hash_key: name}\n  allOf:")
    models = offline.models(spec, create=False)
    assert sorted(table.name.split("_")[-1] for table in tables_of(models)) == ["cats", "dogs", "owners"]
    assert models.Lion._table is models.Cat._table  # a Lion is stored with the Cats


def test_a_property_of_a_subtype_named_like_a_persistence_method_is_refused(offline: Services) -> None:
    spec = ZOO.replace("        packSize: {type: integer}", "        packSize: {type: integer}\n        delete: {type: boolean}")
    with pytest.raises(SpecError) as caught:
        offline.models(spec, create=False)
    assert caught.value.pointer == "/definitions/Dog/allOf/1/properties/delete"
    assert "would hide the persistence method" in caught.value.reason


# -- OpenAPI 3: a mapping of lower-case values, an inline oneOf -------------------------------------

GARAGE = """
openapi: 3.0.3
info: {title: garage, version: '1'}
paths: {}
components:
  schemas:
    Vehicle:
      type: object
      x-persist: {table: vehicles, hash_key: plate}
      required: [plate, type]
      discriminator:
        propertyName: type
        mapping: {car: '#/components/schemas/Car', truck: Truck}
      properties:
        plate: {type: string}
        type: {type: string, enum: [car, truck]}
        wheels: {type: integer}
    Car:
      allOf:
        - $ref: '#/components/schemas/Vehicle'
        - type: object
          properties:
            litres: {type: number}
    Truck:
      allOf:
        - $ref: '#/components/schemas/Vehicle'
        - type: object
          required: [cargo]
          properties:
            cargo: {type: number}
            axles: {type: array, items: {type: number}}
    Lot:
      type: object
      x-persist: {table: lots, hash_key: id}
      required: [id]
      properties:
        id: {type: string}
        parked: {type: array, items: {$ref: '#/components/schemas/Vehicle'}}
        sign:
          type: object
          required: [shape]
          properties:
            shape: {type: string}
            height: {type: number}
          oneOf: [{$ref: '#/components/schemas/Round'}, {$ref: '#/components/schemas/Square'}]
          discriminator: {propertyName: shape}
    Round:
      type: object
      additionalProperties: true
      required: [shape, radius]
      properties: {shape: {type: string}, radius: {type: number}}
    Square:
      type: object
      additionalProperties: true
      required: [shape, side]
      properties: {shape: {type: string}, side: {type: number}}
"""

TRUCK = {"plate": "TR-1", "type": "truck", "wheels": 6, "cargo": 12.0, "axles": [1.0, 2.0]}
CAR = {"plate": "CA-1", "type": "car", "wheels": 4, "litres": 50.0}


def test_openapi_mapping_values_pick_the_subtype_and_its_decoding(services: Services) -> None:
    garage = services.models("", spec=GARAGE)
    garage.Truck.from_json(TRUCK).save()
    garage.Car(plate="CA-1", wheels=4, litres=50.0).save()  # its discriminator value is the mapped "car"
    lot = {"id": "L1", "parked": [TRUCK, CAR], "sign": {"shape": "Round", "radius": 2.0, "height": 3.0}}
    garage.Lot.from_json(lot).save()
    as_dynamodb_stores_them(garage)

    truck = garage.Vehicle.load("TR-1")
    assert type(truck) is garage.Truck
    assert_exact(truck, TRUCK)
    assert_exact(garage.Car.load("CA-1"), CAR)
    with pytest.raises(ItemNotFound):
        garage.Car.load("TR-1")
    assert [vehicle.plate for vehicle in garage.Truck.scan()] == ["TR-1"]

    loaded = garage.Lot.load("L1")
    assert_exact(loaded, lot)  # the sign's height is declared beside the oneOf: a float too
    assert [type(vehicle) for vehicle in loaded.parked] == [garage.Truck, garage.Car]
    assert type(loaded.sign) is garage.Round


def test_x_persist_on_a_discriminated_one_of_stops_start_up(offline: Services) -> None:
    spec = GARAGE.replace("    Round:\n", "    Sign:\n      x-persist: {table: signs, hash_key: shape}\n      oneOf: [{$ref: '#/components/schemas/Round'}, {$ref: '#/components/schemas/Square'}]\n      discriminator: {propertyName: shape}\n    Round:\n")
    with pytest.raises(SpecError) as caught:
        offline.models("", spec=spec, create=False)
    assert caught.value.pointer == "/definitions/Sign/x-persist"
    assert caught.value.reason == (
        "Sign is a oneOf with a discriminator, and Round, Square do not extend it, so they could not save themselves: "
        "persist each alternative, or make Sign a base its subtypes extend with allOf"
    )
