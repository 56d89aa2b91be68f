"""Persisted models as a service's code uses them, against moto's server and AWS DynamoDB Local over HTTP."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from ddb_support import Services

from macaron.errors import ModelValidationError
from macaron.models import ApiModels
from macaron_dynamodb import (
    Attr,
    DynamoDBUnavailable,
    InvalidCursor,
    ItemConflict,
    ItemExists,
    ItemNotFound,
    TableMismatch,
    TableMissing,
    TransactionCancelled,
    batch_write,
    create_tables,
    tables_of,
    transaction,
)

SHOP = """
Order:
  type: object
  x-persist:
    table: orders
    hash_key: customer_id
    range_key: order_id
    version: version
    ttl: expires_at
    indexes:
      by_status: {hash_key: status, range_key: created_at}
      by_total: {type: local, range_key: total, projection: keys_only}
  required: [customer_id, order_id, status]
  properties:
    customer_id: {type: string}
    order_id: {type: string}
    status: {type: string, enum: [new, paid, shipped]}
    created_at: {type: string, format: date-time}
    delivery: {type: string, format: date}
    total: {type: number}
    quantity: {type: integer, format: int64}
    version: {type: integer}
    expires_at: {type: integer}
    gift: {type: boolean}
    note: {type: string, x-nullable: true}
    address: {$ref: '#/definitions/Address'}
    lines:
      type: array
      items: {$ref: '#/definitions/Line'}
    rates:
      type: object
      additionalProperties: {type: number}
    matrix:
      type: array
      items: {type: array, items: {type: number}}
    extra:
      type: object
      additionalProperties: true
Address:
  type: object
  properties:
    city: {type: string}
    geo:
      type: object
      properties:
        lat: {type: number}
        lon: {type: number}
Line:
  type: object
  required: [sku, qty, price]
  properties:
    sku: {type: string}
    qty: {type: integer}
    price: {type: number}
Account:
  type: object
  x-persist: {table: accounts, hash_key: id, version: version}
  required: [id, balance]
  properties:
    id: {type: string}
    balance: {type: integer}
    version: {type: integer}
Note:
  type: object
  x-persist: {table: notes, hash_key: id}
  required: [id]
  properties:
    id: {type: integer}
    text: {type: string}
    rank: {type: number}
"""


@pytest.fixture
def shop(persisted: Any) -> ApiModels:
    models: ApiModels = persisted(SHOP)
    return models


def full_order(**changes: Any) -> dict[str, Any]:
    data = {
        "customer_id": "c1",
        "order_id": "o-001",
        "status": "new",
        "created_at": "2024-05-01T10:20:30.123456Z",
        "delivery": "2024-05-03",
        "total": 10.0,  # an integral float must come back a float
        "quantity": 2**53 + 1,  # beyond a double's precision
        "expires_at": 1_900_000_000,
        "gift": False,
        "note": None,
        "address": {"city": "Paris", "geo": {"lat": 48.0, "lon": 2.35}},
        "lines": [{"sku": "a", "qty": 1, "price": 3.0}, {"sku": "b", "qty": 2, "price": 0.1}],
        "rates": {"vat": 20.0, "discount": 0.05},
        "matrix": [[1.0, 2.5], [], [1e-7, 1.5e120, -2.0]],
        "extra": {"count": 3, "ratio": 0.5, "flag": True, "tags": ["x", 1, 2.25], "nested": {"n": None}},
    }
    data.update(changes)
    return data


def types_of(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: types_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [types_of(item) for item in value]
    return type(value).__name__


def test_every_type_comes_back_exactly_as_saved(shop: ApiModels) -> None:
    data = full_order()
    shop.Order.from_json(data).save()

    loaded = shop.Order.load("c1", "o-001")

    expected = {**data, "version": 1}
    assert loaded.to_json() == expected
    assert types_of(loaded.to_json()) == types_of(expected)  # 10.0 stays a float, 3 an int, None a null
    assert "Decimal" not in repr(types_of(loaded.to_json()))
    assert loaded.created_at == dt.datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=dt.timezone.utc)
    assert loaded.delivery == dt.date(2024, 5, 3)
    assert loaded.address.geo.lat == 48.0 and type(loaded.address.geo.lat) is float
    assert loaded.lines[1].price == 0.1


def test_load_of_a_missing_item_is_a_404_item_not_found(shop: ApiModels) -> None:
    with pytest.raises(ItemNotFound) as caught:
        shop.Order.load("nobody", "nothing")
    error = caught.value.to_error()
    assert (error["status"], error["error"]) == (404, "ITEM_NOT_FOUND")
    assert "customer_id='nobody'" in error["error_description"]


def test_a_key_of_the_wrong_type_is_refused_before_any_call(shop: ApiModels) -> None:
    with pytest.raises(TypeError, match="key 'id' is a number"):
        shop.Note.load("7")


def test_an_invalid_model_is_not_saved(shop: ApiModels) -> None:
    order = shop.Order(customer_id="c1", order_id="o1", status="lost")
    with pytest.raises(ModelValidationError) as caught:
        order.save()
    assert caught.value.status == 400 and "/status" in str(caught.value.problems)
    with pytest.raises(ItemNotFound):
        shop.Order.load("c1", "o1")


def test_a_number_beyond_dynamodbs_range_is_refused_with_its_field(shop: ApiModels) -> None:
    order = shop.Order.from_json(full_order(matrix=[[1.0], [2.0, 1.5e300]]))
    with pytest.raises(ModelValidationError) as caught:
        order.save()
    assert caught.value.problems == [{"field": "/matrix/1/1", "message": "1.5e+300 is out of DynamoDB's range (magnitudes from 1e-130 to 9.99e125)"}]


def test_a_model_without_its_key_says_which_property_is_missing(shop: ApiModels) -> None:
    with pytest.raises(ModelValidationError, match="id"):
        shop.Note(text="no id").save()
    with pytest.raises(ModelValidationError) as caught:
        shop.Order(customer_id="c1", status="new").save()
    assert caught.value.problems == [{"field": "/order_id", "message": "is required: it is part of the key"}]


def test_save_counts_versions_and_a_lost_update_is_a_409_conflict(shop: ApiModels) -> None:
    order = shop.Order(customer_id="c1", order_id="o1", status="new")
    order.save()
    assert order.version == 1
    mine = shop.Order.load("c1", "o1")
    theirs = shop.Order.load("c1", "o1")

    theirs.status = "paid"
    theirs.save()
    assert theirs.version == 2
    mine.status = "shipped"
    with pytest.raises(ItemConflict) as caught:
        mine.save()

    assert (caught.value.status, caught.value.code) == (409, "ITEM_CONFLICT")
    assert "since it was loaded at version 1" in caught.value.description
    assert mine.version == 1  # unchanged: the save did not happen
    assert shop.Order.load("c1", "o1").status == "paid"


def test_a_second_new_model_with_the_same_key_conflicts_instead_of_overwriting(shop: ApiModels) -> None:
    shop.Account(id="a", balance=1).save()
    with pytest.raises(ItemConflict, match="created by someone else"):
        shop.Account(id="a", balance=2).save()
    assert shop.Account.load("a").balance == 1


def test_create_fails_when_the_item_exists(shop: ApiModels) -> None:
    shop.Note(id=1, text="first").save(create=True)
    with pytest.raises(ItemExists) as caught:
        shop.Note(id=1, text="second").save(create=True)
    assert (caught.value.status, caught.value.code) == (409, "ITEM_EXISTS")
    assert shop.Note.load(1).text == "first"
    shop.Note(id=1, text="replaced").save()  # without create, an unversioned save replaces
    assert shop.Note.load(1).text == "replaced"


def test_a_condition_of_your_own_guards_a_save(shop: ApiModels) -> None:
    shop.Note(id=2, text="draft", rank=1.0).save()
    shop.Note(id=2, text="final", rank=2.0).save(condition=Attr("text") == "draft")
    with pytest.raises(ItemConflict, match="condition failed"):
        shop.Note(id=2, text="again", rank=3.0).save(condition=Attr("text") == "draft")
    assert shop.Note.load(2).rank == 2.0


def test_delete_removes_the_item_and_a_stale_delete_conflicts(shop: ApiModels) -> None:
    shop.Order(customer_id="c1", order_id="o1", status="new").save()
    stale = shop.Order.load("c1", "o1")
    fresh = shop.Order.load("c1", "o1")
    fresh.status = "paid"
    fresh.save()

    with pytest.raises(ItemConflict, match="not deleted"):
        stale.delete()
    fresh.delete()
    with pytest.raises(ItemNotFound):
        shop.Order.load("c1", "o1")


def make_orders(shop: ApiModels, count: int, customer: str = "c1") -> None:
    batch_write(
        put=[
            shop.Order(
                customer_id=customer,
                order_id=f"o-{n:03d}",
                status="paid" if n % 2 else "new",
                created_at=f"2024-05-{1 + n % 28:02d}T00:00:00Z",
                total=float(n),
            )
            for n in range(count)
        ],
        unchecked=True,
    )


def test_query_by_key_with_range_conditions_order_and_filters(shop: ApiModels) -> None:
    make_orders(shop, 12)
    make_orders(shop, 3, customer="c2")
    Order = shop.Order

    assert [o.order_id for o in Order.query("c1")] == [f"o-{n:03d}" for n in range(12)]
    assert [o.order_id for o in Order.query("c1", Attr("order_id").between("o-003", "o-005"))] == ["o-003", "o-004", "o-005"]
    assert [o.order_id for o in Order.query("c1", Attr("order_id").startswith("o-01"), reverse=True)] == ["o-011", "o-010"]
    paid = Order.query("c1", filter=Attr("status") == "paid")
    assert len(paid) == 6 and all(o.status == "paid" for o in paid)
    assert all(type(o.total) is float for o in paid)


def test_query_pages_follow_the_cursor_to_the_end(shop: ApiModels) -> None:
    make_orders(shop, 7)
    first = shop.Order.query("c1", limit=3)
    assert len(first) == 3 and first.cursor is not None

    second = shop.Order.query("c1", limit=3, cursor=first.cursor)
    assert [o.order_id for o in second] == ["o-003", "o-004", "o-005"]
    assert [o.order_id for o in first.all()] == [f"o-{n:03d}" for n in range(7)]
    last = second.next_page()
    assert last is not None and [o.order_id for o in last] == ["o-006"]


def test_a_cursor_that_was_not_handed_out_is_a_400(shop: ApiModels) -> None:
    make_orders(shop, 3)
    page = shop.Order.query("c1", limit=1)
    assert page.cursor is not None
    for bad in ("not-a-cursor", page.cursor[:-4], "e30"):  # e30 is {} in base64
        with pytest.raises(InvalidCursor) as caught:
            shop.Order.query("c1", limit=1, cursor=bad)
        assert caught.value.status == 400
    with pytest.raises(InvalidCursor):  # a table cursor is not an index cursor
        shop.Order.query("paid", index="by_status", cursor=page.cursor)


def test_query_a_global_and_a_local_index(shop: ApiModels) -> None:
    make_orders(shop, 6)
    make_orders(shop, 4, customer="c2")

    paid = shop.Order.query("paid", index="by_status", condition=Attr("created_at") >= "2024-05-03T00:00:00Z")
    assert sorted((o.customer_id, o.order_id) for o in paid) == [("c1", "o-003"), ("c1", "o-005"), ("c2", "o-003")]
    assert [o.created_at for o in paid] == sorted(o.created_at for o in paid)

    by_total = shop.Order.query("c1", Attr("total") > 3, index="by_total", reverse=True)
    assert [o.total for o in by_total] == [5.0, 4.0]
    assert by_total[0].status is None  # keys_only projection: the index holds the keys alone
    with pytest.raises(ValueError, match="no index 'by_colour'"):
        shop.Order.query("red", index="by_colour")
    with pytest.raises(ValueError, match="global"):
        shop.Order.query("paid", index="by_status", consistent=True)
    assert len(shop.Order.query("c1", index="by_total", consistent=True)) == 6  # a local index can be read consistently


def test_scan_with_filter_and_pages(shop: ApiModels) -> None:
    make_orders(shop, 5)
    make_orders(shop, 5, customer="c2")
    everything = list(shop.Order.scan(limit=4).all())
    assert len(everything) == 10
    big = list(shop.Order.scan(filter=Attr("total") >= 3.0).all())
    assert sorted((o.customer_id, o.total) for o in big) == [("c1", 3.0), ("c1", 4.0), ("c2", 3.0), ("c2", 4.0)]


def test_batch_write_and_batch_get_many_items(shop: ApiModels) -> None:
    Note = shop.Note
    Note.batch_write(put=[Note(id=n, text=f"note {n}", rank=n / 2) for n in range(60)])

    got = Note.batch_get([59, 3, 1000, 3, 0])
    assert [n.id for n in got] == [59, 3, 3, 0]  # the keys' order, missing ones left out, repeats kept
    assert [n.rank for n in got] == [29.5, 1.5, 1.5, 0.0] and type(got[3].rank) is float
    assert len(Note.batch_get(range(150))) == 60  # more keys than one request takes

    Note.batch_write(delete=[Note.load(1), 2, *range(10, 40)])
    assert len(list(Note.scan().all())) == 60 - 32


def test_batch_write_of_versioned_models_needs_unchecked(shop: ApiModels) -> None:
    accounts = [shop.Account(id=f"a{n}", balance=n) for n in range(3)]
    with pytest.raises(TypeError, match="version"):
        shop.Account.batch_write(put=accounts)
    shop.Account.batch_write(put=accounts, unchecked=True)
    assert [a.version for a in accounts] == [1, 1, 1]
    assert shop.Account.load("a2").to_json() == {"id": "a2", "balance": 2, "version": 1}


def test_a_transaction_writes_all_items_and_bumps_their_versions(shop: ApiModels) -> None:
    shop.Account(id="a", balance=100).save()
    shop.Account(id="b", balance=0).save()
    a, b = shop.Account.load("a"), shop.Account.load("b")
    a.balance -= 30
    b.balance += 30
    with transaction() as tx:
        tx.save(a)
        tx.save(b)
        tx.save(shop.Note(id=1, text="moved 30"), create=True)

    assert (a.version, b.version) == (2, 2)
    assert shop.Account.load("a").balance == 70 and shop.Account.load("b").balance == 30
    assert shop.Note.load(1).text == "moved 30"


def test_a_cancelled_transaction_writes_nothing_and_says_why(shop: ApiModels) -> None:
    shop.Account(id="a", balance=100).save()
    shop.Account(id="b", balance=0).save()
    a, b = shop.Account.load("a"), shop.Account.load("b")
    concurrent = shop.Account.load("b")
    concurrent.balance = 5
    concurrent.save()

    a.balance -= 30
    b.balance += 30
    with pytest.raises(TransactionCancelled) as caught:
        with transaction() as tx:
            tx.save(a)
            tx.save(b)

    error = caught.value
    assert (error.status, error.code) == (409, "TRANSACTION_CANCELLED")
    assert [(r["index"], r["model"], r["key"], r["code"]) for r in error.reasons] == [(1, "Account", {"id": "b"}, "ConditionalCheckFailed")]
    assert "item 1 (Account id='b'): ConditionalCheckFailed (changed since it was loaded)" in error.description
    assert shop.Account.load("a").balance == 100 and shop.Account.load("b").balance == 5
    assert (a.version, b.version) == (1, 1)


def test_a_transaction_can_depend_on_an_item_it_does_not_write(shop: ApiModels) -> None:
    shop.Account(id="a", balance=10).save()
    with pytest.raises(TransactionCancelled, match="item 0"):
        with transaction() as tx:
            tx.check(shop.Account, Attr("balance") >= 50, key="a")
            tx.save(shop.Note(id=5, text="rich"))
    with pytest.raises(ItemNotFound):
        shop.Note.load(5)
    shop.Note(id=6, text="old").save()
    with transaction() as tx:
        tx.check(shop.Account.load("a"), Attr("balance") >= 5)
        tx.delete(shop.Note.load(6))
        tx.save(shop.Note(id=5, text="closed"))
    assert shop.Note.load(5).text == "closed"
    with pytest.raises(ItemNotFound):
        shop.Note.load(6)


def test_a_transaction_refuses_two_actions_on_one_item(shop: ApiModels) -> None:
    note = shop.Note(id=9, text="x")
    with pytest.raises(ValueError, match="already in this transaction"):
        with transaction() as tx:
            tx.save(note)
            tx.delete(note)


def test_create_tables_is_idempotent_and_enables_time_to_live(services: Services, shop: ApiModels) -> None:
    tables = tables_of(shop)
    again = create_tables(tables)
    assert [line.split(": ")[1] for line in again] == ["exists", "exists", "exists"]
    orders = next(t for t in tables if t.spec.table == "orders")
    ttl = orders.backend.call("DescribeTimeToLive", {"TableName": orders.name})["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")


def test_create_tables_refuses_a_table_that_differs_from_the_spec(services: Services, shop: ApiModels) -> None:
    prefix = tables_of(shop)[0].backend.settings.table_prefix
    other = services.models(
        """
        Order:
          type: object
          x-persist: {table: orders, hash_key: id}
          properties:
            id: {type: string}
        """,
        create=False,
        config={"dynamodb": {"endpoint_url": services.endpoint, "region": "us-east-1", "table_prefix": prefix}},
    )
    with pytest.raises(TableMismatch, match=r"its key is \(customer_id, order_id\), the spec says \(id, None\)"):
        create_tables(tables_of(other))


def test_numbers_are_never_decimals(shop: ApiModels) -> None:
    shop.Note(id=3, rank=7.0).save()
    note = shop.Note.load(3)
    assert not isinstance(note.rank, Decimal) and note.rank == 7.0 and type(note.id) is int


def test_conditions_reach_inside_maps_and_lists(shop: ApiModels) -> None:
    shop.Order.from_json(full_order()).save()
    shop.Order.from_json(full_order(order_id="o-002", address={"city": "Lyon"}, lines=[])).save()
    Order = shop.Order
    assert [o.order_id for o in Order.query("c1", filter=Attr("address")["city"] == "Paris")] == ["o-001"]
    assert [o.order_id for o in Order.query("c1", filter=Attr("lines")[1]["price"] < 1)] == ["o-001"]
    assert [o.order_id for o in Order.query("c1", filter=Attr("address")["city"].is_in("Lyon", "Nice"))] == ["o-002"]
    assert [o.order_id for o in Order.query("c1", filter=Attr("created_at") == dt.datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=dt.timezone.utc))] == [
        "o-001",
        "o-002",
    ]


def test_a_missing_table_and_an_unreachable_server_are_errors_that_keep_their_detail_out_of_the_response(services: Services) -> None:
    definitions = """
    Thing:
      type: object
      x-persist: {table: things, hash_key: id}
      properties:
        id: {type: string}
    """
    missing = services.models(definitions, create=False)
    with pytest.raises(TableMissing) as caught:
        missing.Thing.load("x")
    assert "create-tables" in caught.value.detail and "things" in caught.value.detail
    assert caught.value.to_error()["error"] == "DYNAMODB_ERROR" and "things" not in str(caught.value.to_error())

    config = {"dynamodb": {"endpoint_url": "http://127.0.0.1:9", "region": "us-east-1", "max_retries": 0, "connect_timeout": 1}}
    unreachable = services.models(definitions, create=False, config=config)
    with pytest.raises(DynamoDBUnavailable) as down:
        unreachable.Thing.load("x")
    body = down.value.to_error()
    assert (body["status"], body["error"]) == (503, "DYNAMODB_UNAVAILABLE") and "127.0.0.1" not in str(body)
    assert "127.0.0.1:9" in repr(down.value)  # what the log line shows
