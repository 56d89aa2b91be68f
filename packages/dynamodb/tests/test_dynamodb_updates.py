"""Partial updates (UpdateItem) and transactional reads (TransactGetItems), against moto's server and AWS DynamoDB Local."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from ddb_support import Services

from macaron.errors import ModelValidationError
from macaron.models import ApiModels
from macaron_dynamodb import Attr, ItemConflict, ItemNotFound, TransactionCancelled, transaction, transaction_get
from macaron_dynamodb.backend import Cancelled

SHOP = """
Counter:
  type: object
  x-persist: {table: counters, hash_key: name, version: version}
  required: [name, hits]
  properties:
    name: {type: string}
    hits: {type: integer}
    ratio: {type: number}
    last_seen: {type: string, format: date-time}
    note: {type: string}
    memo: {type: string, x-nullable: true}
    tags: {type: array, items: {type: string}, maxItems: 4}
    labels: {type: array, items: {type: string}, uniqueItems: true}
    owner: {$ref: '#/definitions/Person'}
    version: {type: integer}
Person:
  type: object
  required: [name]
  properties:
    name: {type: string}
    height: {type: number}
Stock:
  type: object
  x-persist: {table: stock, hash_key: shop, range_key: sku}
  required: [shop, sku, quantity]
  properties:
    shop: {type: string}
    sku: {type: string}
    quantity: {type: integer, minimum: 0, maximum: 100}
    price: {type: number, minimum: 0, exclusiveMinimum: true}
    packs: {type: integer, multipleOf: 6}
Pet:
  type: object
  discriminator: petType
  x-persist: {table: pets, hash_key: name}
  required: [name, petType]
  properties:
    name: {type: string}
    petType: {type: string}
    weight: {type: number}
    nick: {type: string}
Cat:
  allOf:
    - $ref: '#/definitions/Pet'
    - type: object
      required: [lives]
      properties:
        lives: {type: integer, minimum: 0}
        naps: {type: array, items: {type: number}}
        nick: {type: string, maxLength: 5}
Dog:
  allOf:
    - $ref: '#/definitions/Pet'
    - type: object
      required: [weight]
      properties:
        speed: {type: number}
"""

NOW = dt.datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=dt.timezone.utc)


@pytest.fixture
def shop(persisted: Any) -> ApiModels:
    models: ApiModels = persisted(SHOP)
    return models


def problems_of(caught: pytest.ExceptionInfo[ModelValidationError]) -> dict[str, str]:
    return {problem["field"]: problem["message"] for problem in caught.value.problems}


# -- one item -------------------------------------------------------------------------------


def test_update_sets_adds_appends_and_removes_in_one_call_and_returns_the_item_as_load_would(shop: ApiModels) -> None:
    shop.Counter(name="home", hits=3, note="first", tags=["a"]).save()

    updated = shop.Counter.update(
        "home",
        add={"hits": 2},
        set={"ratio": 2.0, "last_seen": NOW, "owner": shop.Person(name="Ann", height=170.0)},
        append={"tags": ["b", "c"]},
        remove=["note"],
    )

    expected = {
        "name": "home",
        "hits": 5,
        "ratio": 2.0,
        "last_seen": "2024-05-01T10:20:30.123456Z",
        "owner": {"name": "Ann", "height": 170.0},
        "tags": ["a", "b", "c"],
        "version": 2,
    }
    assert updated.to_json() == expected
    assert type(updated.ratio) is float and type(updated.hits) is int  # 2.0 stays a float though DynamoDB stores "2"
    assert updated.last_seen == NOW
    assert type(updated.owner) is shop.Person and updated.owner.height == 170.0
    assert shop.Counter.load("home", consistent=True).to_json() == expected


def test_a_subtraction_is_an_add_of_a_negative_number(shop: ApiModels) -> None:
    shop.Counter(name="c", hits=10, ratio=1.5).save()
    updated = shop.Counter.update("c", add={"hits": -4, "ratio": 0.25})
    assert (updated.hits, updated.ratio) == (6, 1.75)


def test_an_update_of_a_missing_item_is_a_404_and_creates_nothing(shop: ApiModels) -> None:
    with pytest.raises(ItemNotFound) as caught:
        shop.Counter.update("ghost", add={"hits": 1})
    error = caught.value.to_error()
    assert (error["status"], error["error"], error["error_description"]) == (404, "ITEM_NOT_FOUND", "no Counter with name='ghost'")
    with pytest.raises(ItemNotFound):
        shop.Counter.load("ghost", consistent=True)


def test_create_true_creates_a_missing_item_only_from_an_update_that_gives_every_required_property(shop: ApiModels) -> None:
    created = shop.Counter.update("new", add={"hits": 1}, set={"note": "hello"}, create=True)
    assert created.to_json() == {"name": "new", "hits": 1, "note": "hello", "version": 1}
    again = shop.Counter.update("new", add={"hits": 1}, create=True)  # an existing item is simply updated
    assert (again.hits, again.version) == (2, 2)

    with pytest.raises(ModelValidationError) as caught:
        shop.Counter.update("half", set={"note": "no hits"}, create=True)
    assert problems_of(caught) == {"/hits": "is required: with create=True the update may create the item, so it must set this property"}
    with pytest.raises(ItemNotFound):
        shop.Counter.load("half", consistent=True)


def test_every_version_is_counted_so_a_stale_save_after_an_update_conflicts(shop: ApiModels) -> None:
    shop.Counter(name="v", hits=0).save()
    stale = shop.Counter.load("v", consistent=True)
    assert stale.version == 1

    assert shop.Counter.update("v", add={"hits": 1}).version == 2
    stale.hits = 100
    with pytest.raises(ItemConflict) as caught:
        stale.save()
    assert (caught.value.status, caught.value.code) == (409, "ITEM_CONFLICT")
    assert "since it was loaded at version 1" in caught.value.description
    fresh = shop.Counter.load("v", consistent=True)
    assert (fresh.hits, fresh.version) == (1, 2)  # the update survived
    fresh.hits += 10
    fresh.save()
    assert shop.Counter.update("v", add={"hits": 1}).to_json() == {"name": "v", "hits": 12, "version": 4}


def test_a_condition_of_your_own_guards_an_update(shop: ApiModels) -> None:
    shop.Counter(name="c", hits=1, note="open").save()
    assert shop.Counter.update("c", set={"note": "closed"}, condition=Attr("note") == "open").note == "closed"
    with pytest.raises(ItemConflict) as caught:
        shop.Counter.update("c", add={"hits": 1}, condition=Attr("note") == "open")
    assert caught.value.description == "Counter name='c' was not updated: your condition failed"
    assert shop.Counter.load("c", consistent=True).to_json() == {"name": "c", "hits": 1, "note": "closed", "version": 2}


def test_set_none_removes_a_property_and_stores_null_in_a_nullable_one(shop: ApiModels) -> None:
    shop.Counter(name="n", hits=1, note="x", memo="y").save()
    updated = shop.Counter.update("n", set={"note": None, "memo": None})
    assert updated.to_json() == {"name": "n", "hits": 1, "memo": None, "version": 2}


# -- checked before sending ------------------------------------------------------------------


def test_every_wrong_change_is_named_in_one_400_and_nothing_is_written(shop: ApiModels) -> None:
    shop.Counter(name="c", hits=1, note="keep").save()

    with pytest.raises(ModelValidationError) as caught:
        shop.Counter.update(
            "c",
            set={"hits": "many", "colour": "red", "owner": {"height": 2.0}, "name": "other", "version": 9},
            add={"note": 1, "ratio": True},
            append={"ratio": [1.0]},
            remove=["hits"],
        )

    error = caught.value.to_error()
    assert (error["status"], error["error"]) == (400, "INVALID_MODEL")
    assert error["error_description"].startswith("invalid Counter: ")
    assert problems_of(caught) == {
        "/hits": 'is changed twice (in set and remove): one change per property',
        "/colour": "is not a property of Counter (its properties: hits, labels, last_seen, memo, name, note, owner, ratio, tags, version)",
        "/owner/name": "is required",
        "/name": "is part of the key: an update cannot change it (save the item under its new key, delete the old one)",
        "/version": "is the version: every update adds one to it",
        "/note": "is string: add takes number properties only",
        "/ratio": "is changed twice (in add and append): one change per property",
    }
    assert 'hits: "many" is not of type "integer"' in error["error_description"]
    assert shop.Counter.load("c", consistent=True).to_json() == {"name": "c", "hits": 1, "note": "keep", "version": 1}


def test_add_takes_numbers_its_property_accepts(shop: ApiModels) -> None:
    shop.Counter(name="c", hits=1).save()
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"hits": 0.5}, "/hits", "is an integer: add 0.5 would make it a fraction"),
        ({"hits": "1"}, "/hits", "add takes a number, not str '1'"),
        ({"hits": True}, "/hits", "add takes a number, not bool True"),
        ({"ratio": float("nan")}, "/ratio", "nan cannot be stored (DynamoDB numbers are finite)"),
        ({"tags": 1}, "/tags", "is array: add takes number properties only"),
    ]
    for add, field, message in cases:
        with pytest.raises(ModelValidationError) as caught:
            shop.Counter.update("c", add=add)
        assert problems_of(caught) == {field: message}
    assert shop.Counter.update("c", add={"hits": 2.0}).hits == 3  # an integral float is an integer


def test_required_properties_cannot_be_removed_and_an_empty_update_is_refused(shop: ApiModels) -> None:
    shop.Counter(name="c", hits=1).save()
    with pytest.raises(ModelValidationError) as caught:
        shop.Counter.update("c", remove=["hits"])
    assert problems_of(caught) == {"/hits": "is required by Counter: an update cannot remove it"}
    with pytest.raises(ModelValidationError) as caught:
        shop.Counter.update("c", set={"hits": None})  # None removes: refused the same way
    assert problems_of(caught) == {"/hits": "is required by Counter: an update cannot remove it"}
    with pytest.raises(TypeError, match="nothing to change"):
        shop.Stock.update("s", "x")
    with pytest.raises(TypeError, match="key 'sku' is a string"):
        shop.Stock.update("s", 5, add={"quantity": 1})


def test_minimum_and_maximum_hold_under_atomic_adds(shop: ApiModels) -> None:
    shop.Stock(shop="s1", sku="lamp", quantity=2, price=5.0).save()
    assert shop.Stock.update("s1", "lamp", add={"quantity": -2}).quantity == 0

    with pytest.raises(ItemConflict) as caught:
        shop.Stock.update("s1", "lamp", add={"quantity": -1})
    assert caught.value.description == "Stock shop='s1' sku='lamp' was not updated: quantity would become -1, beyond its minimum 0"
    with pytest.raises(ItemConflict, match="quantity would become 101, beyond its maximum 100"):
        shop.Stock.update("s1", "lamp", add={"quantity": 101})
    with pytest.raises(ItemConflict, match=r"price would become 0\.0, beyond its exclusiveMinimum 0"):
        shop.Stock.update("s1", "lamp", add={"price": -5.0})
    assert shop.Stock.update("s1", "lamp", add={"price": -4.5}).price == 0.5
    assert shop.Stock.load("s1", "lamp", consistent=True).to_json() == {"shop": "s1", "sku": "lamp", "quantity": 0, "price": 0.5}

    with pytest.raises(ModelValidationError) as caught:
        shop.Stock.update("s1", "lamp", add={"packs": 4})
    assert problems_of(caught) == {"/packs": "is a multiple of 6: adding 4 would break it"}
    # A missing number counts as 0: created from an add that would break the minimum, it is not created.
    with pytest.raises(ItemConflict, match="quantity would become -1"):
        shop.Stock.update("s1", "desk", add={"quantity": -1}, create=True)
    with pytest.raises(ItemNotFound):
        shop.Stock.load("s1", "desk", consistent=True)


def test_append_checks_its_items_and_maxitems_and_refuses_unique_lists(shop: ApiModels) -> None:
    shop.Counter(name="c", hits=0).save()
    assert shop.Counter.update("c", append={"tags": ["a", "b"]}).tags == ["a", "b"]  # a missing list starts empty
    assert shop.Counter.update("c", append={"tags": ("c",)}).tags == ["a", "b", "c"]

    with pytest.raises(ItemConflict, match="tags would hold 5 items, more than its maxItems 4"):
        shop.Counter.update("c", append={"tags": ["d", "e"]})
    with pytest.raises(ModelValidationError) as caught:
        shop.Counter.update("c", append={"tags": ["ok", 7], "labels": ["x"], "hits": [1]})
    assert problems_of(caught) == {
        "/tags/-": '7 is not of type "string"',
        "/labels": "has uniqueItems, which no update expression can check: save the item (or use modify()) instead",
        "/hits": "is integer: append takes list properties only",
    }
    with pytest.raises(ModelValidationError, match="append takes a list of the items to add, not str"):
        shop.Counter.update("c", append={"tags": "d"})
    assert shop.Counter.load("c", consistent=True).tags == ["a", "b", "c"]


# -- polymorphic models ------------------------------------------------------------------------


def test_a_subtype_updates_items_of_its_kind_with_its_own_properties(shop: ApiModels) -> None:
    shop.Cat(name="Tom", lives=9, weight=4.0).save()
    shop.Dog(name="Rex", speed=40.0, weight=20.0).save()

    tom = shop.Cat.update("Tom", add={"lives": -1}, append={"naps": [2.0]}, set={"weight": 5.0})
    assert type(tom) is shop.Cat
    assert tom.to_json() == {"name": "Tom", "petType": "Cat", "lives": 8, "weight": 5.0, "naps": [2.0]}
    assert type(tom.naps[0]) is float and type(tom.weight) is float
    assert type(shop.Pet.update("Rex", set={"weight": 30.0})) is shop.Dog  # through the base: the item's own kind

    with pytest.raises(ItemNotFound) as caught:
        shop.Cat.update("Rex", add={"lives": 1})
    assert caught.value.description == "no Cat with name='Rex' (the item is a Dog)"
    with pytest.raises(ModelValidationError) as refused:
        shop.Pet.update("Tom", add={"lives": 1}, set={"petType": "Dog"})
    assert problems_of(refused) == {
        "/lives": "is not a property of Pet (its properties: name, nick, petType, weight)",
        "/petType": "is the discriminator: an update cannot change an item's kind (save it as its new kind)",
    }
    # Through the base, the item may be any kind: what a subtype says more about a property is refused there.
    with pytest.raises(ModelValidationError) as refused:
        shop.Pet.update("Tom", set={"nick": "Tommy the cat"}, remove=["weight"])
    assert problems_of(refused) == {
        "/nick": "is declared differently by Cat: update it through Cat, whose schema then applies",
        "/weight": "is required by Dog, which the item may be: remove it through the item's own kind",
    }
    with pytest.raises(ModelValidationError, match=r"nick: .* is longer than 5 characters"):
        shop.Cat.update("Tom", set={"nick": "Tommy the cat"})
    assert shop.Cat.update("Tom", set={"nick": "Tom"}, remove=["weight"]).to_json() == {"name": "Tom", "petType": "Cat", "lives": 8, "naps": [2.0], "nick": "Tom"}
    with pytest.raises(ModelValidationError, match="/weight: is required by Dog: an update cannot remove it"):
        shop.Dog.update("Rex", remove=["weight"])

    kit = shop.Cat.update("Kit", set={"lives": 3}, create=True)
    assert type(kit) is shop.Cat and kit.to_json() == {"name": "Kit", "petType": "Cat", "lives": 3}
    assert type(shop.Pet.load("Kit", consistent=True)) is shop.Cat


# -- transactions --------------------------------------------------------------------------------


def test_a_transaction_applies_updates_and_puts_together(shop: ApiModels) -> None:
    shop.Stock(shop="s1", sku="lamp", quantity=5).save()
    shop.Counter(name="sales", hits=0).save()

    with transaction() as tx:
        tx.update(shop.Stock, ("s1", "lamp"), add={"quantity": -2})
        tx.update(shop.Counter, "sales", add={"hits": 2}, append={"tags": ["lamp"]})
        tx.save(shop.Counter(name="receipt-1", hits=2), create=True)

    assert shop.Stock.load("s1", "lamp", consistent=True).quantity == 3
    assert shop.Counter.load("sales", consistent=True).to_json() == {"name": "sales", "hits": 2, "tags": ["lamp"], "version": 2}
    assert shop.Counter.load("receipt-1", consistent=True).version == 1


def test_a_transaction_whose_update_fails_writes_nothing_and_says_which_condition(shop: ApiModels) -> None:
    shop.Stock(shop="s1", sku="lamp", quantity=1).save()
    shop.Counter(name="sales", hits=0).save()

    with pytest.raises(TransactionCancelled) as caught:
        with transaction() as tx:
            tx.update(shop.Counter, "sales", add={"hits": 2})
            tx.save(shop.Counter(name="receipt-1", hits=2))
            tx.update(shop.Stock, ("s1", "lamp"), add={"quantity": -2})
    error = caught.value
    assert (error.status, error.code) == (409, "TRANSACTION_CANCELLED")
    assert [(r["index"], r["model"], r["key"], r["code"]) for r in error.reasons] == [(2, "Stock", {"shop": "s1", "sku": "lamp"}, "ConditionalCheckFailed")]
    assert "item 2 (Stock shop='s1' sku='lamp'): ConditionalCheckFailed (quantity would become -1, beyond its minimum 0)" in error.description
    assert shop.Counter.load("sales", consistent=True).to_json() == {"name": "sales", "hits": 0, "version": 1}
    with pytest.raises(ItemNotFound):
        shop.Counter.load("receipt-1", consistent=True)

    with pytest.raises(TransactionCancelled, match=r"item 0 \(Counter name='nobody'\): ConditionalCheckFailed \(not found\)"):
        with transaction() as tx:
            tx.update(shop.Counter, "nobody", add={"hits": 1})
            tx.update(shop.Stock, ("s1", "lamp"), add={"quantity": 1})
    assert shop.Stock.load("s1", "lamp", consistent=True).quantity == 1


def test_a_transaction_checks_an_update_before_sending_and_refuses_a_class_for_a_model(shop: ApiModels) -> None:
    with pytest.raises(ModelValidationError, match="/hits"):
        with transaction() as tx:
            tx.update(shop.Counter, "c", set={"hits": "x"})
    with pytest.raises(TypeError, match="give the model class and the key"):
        transaction().update(shop.Counter(name="c", hits=1), "c", add={"hits": 1})  # type: ignore[arg-type]


# -- transactional reads ---------------------------------------------------------------------------


def test_transaction_get_reads_several_models_at_once_in_order_with_none_for_missing_ones(shop: ApiModels) -> None:
    shop.Counter(name="a", hits=1, ratio=3.0).save()
    shop.Stock(shop="s1", sku="lamp", quantity=4).save()
    shop.Cat(name="Tom", lives=9, weight=4.0).save()
    shop.Dog(name="Rex", weight=20.0).save()

    got = transaction_get(
        [
            (shop.Stock, ("s1", "lamp")),
            (shop.Counter, "missing"),
            (shop.Counter, "a"),
            (shop.Pet, "Tom"),
            (shop.Cat, "Rex"),  # a Dog, read through Cat: not a Cat
            (shop.Counter, "a"),
        ]
    )

    assert [None if g is None else type(g).__name__ for g in got] == ["Stock", None, "Counter", "Cat", None, "Counter"]
    assert got[0].to_json() == {"shop": "s1", "sku": "lamp", "quantity": 4}
    assert got[2].to_json() == {"name": "a", "hits": 1, "ratio": 3.0, "version": 1} and type(got[2].ratio) is float
    assert got[3].weight == 4.0 and type(got[3].weight) is float
    assert got[5] is got[2]  # a key given twice is read once
    assert transaction_get([]) == []


def test_transaction_get_reads_what_a_committed_transaction_wrote(shop: ApiModels) -> None:
    shop.Counter(name="from", hits=10).save()
    shop.Counter(name="to", hits=0).save()
    with transaction() as tx:
        tx.update(shop.Counter, "from", add={"hits": -3})
        tx.update(shop.Counter, "to", add={"hits": 3})
    source, target = transaction_get([(shop.Counter, "from"), (shop.Counter, "to")])
    assert (source.hits, target.hits) == (7, 3) and source.hits + target.hits == 10


def test_transaction_get_refuses_what_it_cannot_read(shop: ApiModels) -> None:
    with pytest.raises(TypeError, match=r"\(model class, key\) pairs"):
        transaction_get([shop.Counter(name="a", hits=1)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="key 'name' is a string"):
        transaction_get([(shop.Counter, 5)])
    with pytest.raises(ValueError, match="at most 100 items, not 101"):
        transaction_get([(shop.Counter, str(n)) for n in range(101)])


# -- OpenAPI 3.1 ---------------------------------------------------------------------------------------

OPENAPI_31 = """
openapi: 3.1.0
info: {title: t, version: '1'}
paths: {}
components:
  schemas:
    Meter:
      type: object
      x-persist: {table: meters, hash_key: id}
      required: [id, level]
      properties:
        id: {type: string}
        level: {type: number, exclusiveMinimum: 0, maximum: 10}
        label: {type: [string, 'null']}
"""


def test_an_openapi_31_spec_is_checked_in_its_own_dialect(services: Services) -> None:
    Meter = services.models("", spec=OPENAPI_31).Meter
    Meter(id="m", level=5.0).save()
    assert Meter.update("m", add={"level": -4.5}, set={"label": None}).to_json() == {"id": "m", "level": 0.5, "label": None}
    with pytest.raises(ItemConflict, match=r"level would become 0\.0, beyond its exclusiveMinimum 0"):
        Meter.update("m", add={"level": -0.5})
    with pytest.raises(ModelValidationError) as caught:
        Meter.update("m", set={"label": 3})
    assert caught.value.problems == [{"field": "/label", "message": '3 is not of types "null", "string"'}]
    with pytest.raises(ModelValidationError) as caught:
        Meter.update("m", set={"level": 0})  # exclusiveMinimum as a number: 2020-12, not draft 4
    assert caught.value.problems == [{"field": "/level", "message": "0 is less than or equal to the minimum of 0"}]


def test_a_transactional_read_cancelled_by_a_concurrent_write_is_a_409_naming_the_item(shop: ApiModels, monkeypatch: pytest.MonkeyPatch) -> None:
    # DynamoDB cancels a TransactGetItems while a write transaction holds one of its items; no
    # emulator can be made to do it on cue, so the backend answers as DynamoDB does.
    backend = shop.Counter._table.backend

    def busy(operation: str, arguments: dict[str, Any]) -> dict[str, Any]:
        assert operation == "TransactGetItems" and len(arguments["TransactItems"]) == 2
        raise Cancelled([None, ("TransactionConflict", "Transaction is ongoing for the item")])

    monkeypatch.setattr(backend, "call", busy)
    with pytest.raises(TransactionCancelled) as caught:
        transaction_get([(shop.Counter, "a"), (shop.Stock, ("s1", "lamp"))])
    assert (caught.value.status, caught.value.code) == (409, "TRANSACTION_CANCELLED")
    assert caught.value.description == "transactional read cancelled: item 1 (Stock shop='s1' sku='lamp'): TransactionConflict (Transaction is ongoing for the item)"
    assert caught.value.reasons == [
        {"index": 1, "model": "Stock", "key": {"shop": "s1", "sku": "lamp"}, "code": "TransactionConflict", "message": "Transaction is ongoing for the item"}
    ]
