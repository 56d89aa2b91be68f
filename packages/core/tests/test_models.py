"""The model classes a spec's definitions become: ``apis.<api>.<Model>``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from macaron import Model, apis
from macaron.errors import ModelValidationError
from service_maker import ServiceMaker

SPEC = """
paths:
  /orders:
    post:
      x-bind-server: HANDLERS.create
      parameters:
        - {name: order, in: body, required: true, schema: {$ref: '#/definitions/Order'}}
      responses:
        201: {description: created, schema: {$ref: '#/definitions/Order'}}
definitions:
  Order:
    type: object
    x-parent: HANDLERS_mixins.OrderMixin
    required: [id, address]
    properties:
      id: {type: integer}
      placed: {type: string, format: date-time}
      due: {type: string, format: date}
      address: {$ref: '#/definitions/Address'}
      lines:
        type: array
        items: {$ref: '#/definitions/Line'}
      notes: {type: object, additionalProperties: {type: string}}
      gift-wrap: {type: boolean}
      coupon: {type: string, x-nullable: true}
  Address:
    type: object
    required: [city]
    properties:
      city: {type: string}
      zip: {type: string, pattern: '^[0-9]{5}$'}
  Line:
    type: object
    properties:
      sku: {type: string}
      qty: {type: integer, minimum: 1}
"""

HANDLERS = """
def create(order):
    order.address.city = order.address.city.upper()
    return order
"""

MIXIN = """
class OrderMixin:
    def total_quantity(self):
        return sum(line.qty for line in self.lines or [])
"""


@pytest.fixture
def loaded(services: ServiceMaker) -> Any:
    app = services.app(SPEC, HANDLERS, files={"HANDLERS_mixins.py": MIXIN})
    return app


def test_one_class_per_definition_at_apis_api_model(loaded: Any) -> None:
    assert {cls.__name__ for cls in apis.x} == {"Order", "Address", "Line"}
    assert issubclass(apis.x.Order, Model)
    with pytest.raises(AttributeError, match="has no model 'Nope'"):
        _ = apis.x.Nope


def test_attribute_access_converts_and_keeps_json(loaded: Any) -> None:
    order = apis.x.Order(id=1, address=apis.x.Address(city="Paris"), placed=dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc), due=dt.date(2024, 5, 3))
    assert order.id == 1
    assert order.placed == dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)
    assert order.due == dt.date(2024, 5, 3)
    assert isinstance(order.address, apis.x.Address)
    assert order.lines is None
    order.gift_wrap = True  # a property name that is not an identifier, made Python-safe
    assert order["gift-wrap"] is True
    assert order.to_json() == {"id": 1, "address": {"city": "Paris"}, "placed": "2024-05-01T12:00:00Z", "due": "2024-05-03", "gift-wrap": True}


def test_from_json_validates_and_lists_every_problem(loaded: Any) -> None:
    order = apis.x.Order.from_json({"id": 2, "address": {"city": "Oslo"}, "lines": [{"sku": "a", "qty": 2}]})
    assert order.lines[0].qty == 2
    with pytest.raises(ModelValidationError) as caught:
        apis.x.Order.from_json({"id": "two", "address": {"zip": "abc"}, "lines": [{"qty": 0}], "colour": "red"})
    fields = {problem["field"] for problem in caught.value.problems}
    assert fields == {"/id", "/address/city", "/address/zip", "/lines/0/qty", "/colour"}
    assert "invalid Order" in str(caught.value)


def test_from_json_takes_python_dates_and_models_too(loaded: Any) -> None:
    order = apis.x.Order.from_json({"id": 3, "due": dt.date(2024, 1, 2), "address": apis.x.Address(city="Lima")})
    assert order.to_json() == {"id": 3, "due": "2024-01-02", "address": {"city": "Lima"}}
    with pytest.raises(ModelValidationError):
        apis.x.Order.from_json(["not", "an", "object"])


def test_validate_on_an_instance(loaded: Any) -> None:
    order = apis.x.Order(id=1)
    with pytest.raises(ModelValidationError, match="address"):
        order.validate()
    order.address = {"city": "Rome"}
    order.validate()


def test_to_json_is_a_copy(loaded: Any) -> None:
    order = apis.x.Order.from_json({"id": 1, "address": {"city": "Rome"}})
    data = order.to_json()
    data["address"]["city"] = "Milan"
    assert order.address.city == "Rome"


def test_from_json_copies_its_input(loaded: Any) -> None:
    data = {"id": 1, "address": {"city": "Rome"}}
    order = apis.x.Order.from_json(data)
    order.address.city = "Milan"
    assert data["address"]["city"] == "Rome"


def test_equality_and_repr(loaded: Any) -> None:
    one = apis.x.Address(city="Oslo", zip="12345")
    assert one == apis.x.Address(city="Oslo", zip="12345")
    assert one != apis.x.Address(city="Oslo")
    assert one != apis.x.Line.from_json({})
    assert repr(one) == "Address(city='Oslo', zip='12345')"
    with pytest.raises(TypeError):
        hash(one)


def test_x_parent_mixes_methods_in(loaded: Any) -> None:
    order = apis.x.Order.from_json({"id": 1, "address": {"city": "Oslo"}, "lines": [{"qty": 2}, {"qty": 3}]})
    assert order.total_quantity() == 5
    assert type(order).__mro__[1].__name__ == "OrderMixin"


def test_unknown_attribute_is_rejected(loaded: Any) -> None:
    order = apis.x.Order(id=1)
    with pytest.raises(AttributeError, match="no property 'colour'"):
        order.colour = "red"
    with pytest.raises(AttributeError, match="no property 'colour'"):
        _ = order.colour
    with pytest.raises(AttributeError):
        apis.x.Order(colour="red")


def test_nested_model_mutation_is_visible_in_the_parent(loaded: Any) -> None:
    order = apis.x.Order.from_json({"id": 1, "address": {"city": "Oslo"}, "lines": [{"qty": 1}]})
    order.address.zip = "00150"
    order.lines[0].qty = 7
    assert order.to_json()["address"] == {"city": "Oslo", "zip": "00150"}
    assert order.to_json()["lines"] == [{"qty": 7}]


def test_changing_a_list_or_map_of_converted_values_changes_the_model(loaded: Any) -> None:
    order = apis.x.Order.from_json({"id": 1, "address": {"city": "Oslo"}, "lines": [{"qty": 1}]})
    order.lines.append(apis.x.Line(sku="b", qty=2))
    order.lines[0] = apis.x.Line(sku="a", qty=5)
    assert order.to_json()["lines"] == [{"sku": "a", "qty": 5}, {"sku": "b", "qty": 2}]
    order.lines.sort(key=lambda line: line.qty)
    del order.lines[0]
    assert order.to_json()["lines"] == [{"sku": "a", "qty": 5}]
    assert order.total_quantity() == 5
    order.lines.append(apis.x.Line(qty=1))
    order.lines[-1].sku = "late"  # a model appended is still shared with the order
    assert order.to_json()["lines"][-1] == {"qty": 1, "sku": "late"}
    order.notes = {"door": "blue"}
    order.notes["gate"] = "red"  # a map of plain strings is the model's own dict
    assert order.to_json()["notes"] == {"door": "blue", "gate": "red"}


def test_setting_none_removes_the_property(loaded: Any) -> None:
    order = apis.x.Order(id=1, due=dt.date(2024, 1, 1))
    order.due = None
    assert "due" not in order.to_json()


def test_none_on_a_nullable_property_is_sent_as_null(loaded: Any) -> None:
    order = apis.x.Order(id=1, address=apis.x.Address(city="Lyon"), coupon="SPRING")
    order.coupon = None
    assert order.to_json() == {"id": 1, "address": {"city": "Lyon"}, "coupon": None}
    assert order.coupon is None
    order.validate()


def test_models_from_a_request_and_as_a_response(loaded: Any) -> None:
    client = loaded.test_client()
    response = client.post("/orders", json={"id": 1, "address": {"city": "oslo"}})
    assert response.status_code == 201, response.json
    assert response.json == {"id": 1, "address": {"city": "OSLO"}}


def test_api_and_model_names_that_are_not_identifiers(services: ServiceMaker) -> None:
    spec = """
paths: {}
definitions:
  Pet-Summary:
    type: object
    properties:
      name: {type: string}
"""
    services.app(spec, "", api="pet-store")
    assert apis.pet_store.Pet_Summary(name="rex").to_json() == {"name": "rex"}
    assert getattr(apis, "pet-store") is apis.pet_store
