"""One way to load a service: the server, the contract run, the worker and create-tables see the same APIs."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import click
import pytest

from macaron import bind_service, create_app, load_service, service_of
from macaron.startup import StartupError

SHOP = """
swagger: '2.0'
info: {title: shop, version: '1'}
produces: [application/json]
paths:
  /orders/{order_id}:
    get:
      operationId: get_order
      x-bind-server: shop_handlers.get_order
      parameters:
        - {name: order_id, in: path, required: true, type: string}
      responses:
        200: {description: the order, schema: {$ref: '#/definitions/Order'}}
definitions:
  Order:
    type: object
    x-persist: {table: orders, hash_key: order_id}
    properties:
      order_id: {type: string}
      total: {$ref: 'common.yaml#/definitions/Money'}
"""

# Only definitions, which shop.yaml $refs: not an API of its own.
COMMON = """
definitions:
  Money:
    type: object
    properties:
      amount: {type: integer}
      currency: {type: string}
"""

# An API the service calls, not one it serves; its x-persist must not give the service a table.
ITEMS = """
swagger: '2.0'
info: {title: items, version: '1'}
produces: [application/json]
paths:
  /items:
    get:
      operationId: list_items
      x-bind-server: items_api.list_items
      responses:
        200: {description: the items, schema: {type: array, items: {$ref: '#/definitions/Item'}}}
definitions:
  Item:
    type: object
    x-persist: {table: items, hash_key: item_id}
    properties:
      item_id: {type: string}
"""

CONFIG = """
name: shop
jwt_secret: loading-test-secret-0123456789abcdef
dynamodb: {region: us-east-1, endpoint_url: 'http://127.0.0.1:9'}
clients:
  items: {url: 'http://127.0.0.1:9'}
async: {broker_url: 'redis://127.0.0.1:9/0'}
"""

HANDLERS = """
def get_order(order_id):
    raise NotImplementedError
"""

@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sys, "path", list(sys.path))  # loading puts the service's folder on it
    root = tmp_path / "shop"
    (root / "apis").mkdir(parents=True)
    for name, text in (("shop", SHOP), ("common", COMMON), ("items", ITEMS)):
        (root / "apis" / f"{name}.yaml").write_text(textwrap.dedent(text))
    (root / "macaron.yaml").write_text(CONFIG)
    (root / "shop_handlers.py").write_text(HANDLERS)
    return root


def served_by_the_server(root: Path) -> set[str]:
    return set(service_of(create_app(root)).apis)


def test_the_server_serves_its_own_apis_only(service: Path) -> None:
    served = served_by_the_server(service)
    assert "shop" in served and "items" not in served and "common" not in served  # and what plugins register (/ping)


def test_loading_imports_no_handler_and_binding_makes_the_app(service: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "shop_handlers", raising=False)  # another test's service imported its own
    (service / "shop_handlers.py").write_text("raise ImportError('a handler module was imported')\n")
    loaded = load_service(service)
    assert loaded.app is None and "shop" in loaded.apis and "items" not in loaded.apis
    assert "Order" in dir(loaded.models["shop"])
    with pytest.raises(StartupError, match="a handler module was imported"):
        bind_service(loaded)


def test_the_contract_run_tests_what_the_server_serves(service: Path) -> None:
    from macaron_unit.contract import security_scopes, served_apis

    assert {api.name for api in served_apis(service)} == served_by_the_server(service)
    assert security_scopes(service) == []


def test_the_worker_loads_what_the_server_serves(service: Path) -> None:
    from macaron_async.launching import load_for_celery

    app, _, _, _ = load_for_celery(service, None, "worker")
    assert set(service_of(app).apis) == served_by_the_server(service)


def test_create_tables_sees_the_tables_of_what_the_server_serves(service: Path) -> None:
    from macaron_dynamodb.cli import service_tables

    tables = service_tables(service, None)
    assert [table.name for table in tables] == ["orders"]
    assert {table.model._api for table in tables} <= served_by_the_server(service)


def test_a_broken_service_is_one_error_for_every_command(service: Path) -> None:
    from macaron_dynamodb.cli import service_tables
    from macaron_unit.contract import ContractError, served_apis

    (service / "apis" / "shop.yaml").write_text(SHOP.replace("common.yaml#/definitions/Money", "common.yaml#/definitions/Nope"))
    with pytest.raises(StartupError) as server:
        create_app(service)
    with pytest.raises(ContractError) as contract:
        served_apis(service)
    with pytest.raises(click.ClickException) as tables:
        service_tables(service, None)
    assert str(server.value) == str(contract.value) == tables.value.message
