"""x-persist and the dynamodb config section as a service author writes them: what is accepted, and the errors at start-up."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ddb_support import Services

from macaron.config import ConfigError
from macaron.spec import SpecError
from macaron_dynamodb import Persistent, tables_of

ITEM = """
Item:
  type: object
  x-persist: {persist}
  properties:
    id: {{type: string}}
    day: {{type: string, format: date}}
    rank: {{type: integer}}
    score: {{type: number}}
    label: {{type: string, x-nullable: true}}
    tags: {{type: array, items: {{type: string}}}}
"""


def item(persist: str) -> str:
    return ITEM.format(persist=persist)


@pytest.fixture
def offline(tmp_path: Path) -> Iterator[Services]:
    """Services whose tables are never created: start-up itself never calls DynamoDB (the endpoint is a closed port)."""
    maker = Services(tmp_path, "http://127.0.0.1:9")
    yield maker
    maker.cleanup()


def start(services: Services, definitions: str, **kwargs: Any) -> Any:
    return services.models(definitions, create=False, **kwargs)


@pytest.mark.parametrize(
    ("persist", "pointer", "message"),
    [
        ("{table: items}", "x-persist", "hash_key is required"),
        ("{table: items, hash_key: idd}", "x-persist/hash_key", "hash_key 'idd' is not a property of Item (its properties: day, id, label, rank, score, tags)"),
        ("{table: items, hash_key: label}", "x-persist/hash_key", "hash_key 'label' is nullable"),
        ("{table: items, hash_key: tags}", "x-persist/hash_key", "must be a string, integer or number property (it is array)"),
        ("{table: items, hash_key: id, range_key: id}", "x-persist/range_key", "range_key must differ from hash_key"),
        ("{table: it, hash_key: id}", "x-persist/table", "table must be a table name"),
        ("{table: items, hash_key: id, version: score}", "x-persist/version", "version 'score' must be an integer property"),
        ("{table: items, hash_key: id, ttl: day}", "x-persist/ttl", "ttl 'day' must be an integer property"),
        ("{table: items, hash_key: id, colour: red}", "x-persist", "unknown key colour"),
        ("{table: items, hash_key: id, indexes: {by_day: {type: local, range_key: day}}}", "x-persist/indexes/by_day", "a local index needs a table with a range_key"),
        ("{table: items, hash_key: id, indexes: {by_day: {range_key: day}}}", "x-persist/indexes/by_day", "a global index needs a hash_key"),
        ("{table: items, hash_key: id, indexes: {by_day: {hash_key: day, projection: some}}}", "x-persist/indexes/by_day/projection", "projection is 'all'"),
        ("{table: items, hash_key: id, read_capacity: 5}", "x-persist", "read_capacity and write_capacity go together"),
        ("{table: items, hash_key: id, backend: redis}", "x-persist/backend", "backend 'redis' is not installed"),
        ("[items, id]", "x-persist", "x-persist must be a mapping"),
        ("no_such_module.Items", "x-persist", "cannot import 'no_such_module.Items'"),
    ],
)
def test_a_bad_x_persist_stops_start_up_naming_the_definition_and_the_problem(offline: Services, persist: str, pointer: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        start(offline, item(persist))
    assert caught.value.pointer == f"/definitions/Item/{pointer}"
    assert message in caught.value.reason
    assert str(caught.value).split(": at ")[0].endswith("apis/shop.yaml")  # names the spec file


def test_a_property_named_like_a_persistence_method_is_refused(offline: Services) -> None:
    definitions = """
    Job:
      type: object
      x-persist: {table: jobs, hash_key: id}
      properties:
        id: {type: string}
        delete: {type: boolean}
    """
    with pytest.raises(SpecError, match="property delete would hide the persistence method of the same name"):
        start(offline, definitions)


def test_x_persist_can_name_a_class_that_holds_the_settings(offline: Services) -> None:
    files = {
        "tables.py": """
        class Items:
            table_name = "items"      # PyMacaron's names are accepted
            primary_key = "id"
            indexes = {"by_day": {"hash_key": "day", "projection": ["rank"]}}
        """
    }
    models = start(offline, item("tables.Items"), files=files)
    (table,) = tables_of(models)
    assert (table.spec.table, table.spec.hash_key, table.spec.indexes["by_day"].projection) == ("items", "id", "INCLUDE")
    assert table.name.endswith("_items")  # the config's table_prefix comes first


def test_persistence_comes_after_an_x_parent_so_it_can_wrap_save(offline: Services) -> None:
    files = {
        "mixins.py": """
        class Stamped:
            def save(self, **kwargs):
                self.label = "stamped"
                return super().save(**kwargs)
        """
    }
    definitions = """
    Item:
      type: object
      x-parent: mixins.Stamped
      x-persist: {table: items, hash_key: id}
      properties:
        id: {type: string}
        label: {type: string}
    """
    models = start(offline, definitions, files=files)
    Item = models.Item
    assert [cls.__name__ for cls in Item.__mro__[:4]] == ["Item", "Stamped", "Persistent", "Model"]
    assert issubclass(Item, Persistent)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"regoin": "eu-west-1"}, "dynamodb: unknown key regoin"),
        ({"endpoint_url": "127.0.0.1:8000"}, "endpoint_url must be an http:// or https:// URL"),
        ({"read_timeout": 0}, "read_timeout must be a positive number of seconds"),
        ({"max_retries": -1}, "max_retries must be a whole number"),
        ({"table_prefix": 3}, "table_prefix must be a string"),
    ],
)
def test_a_bad_dynamodb_config_section_stops_start_up(offline: Services, section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        start(offline, item("{table: items, hash_key: id}"), config={"dynamodb": section})
    assert "macaron.yaml" in str(caught.value)


def test_without_the_plugin_a_persisted_definition_is_a_start_up_error(tmp_path: Any) -> None:
    from macaron import create_app
    from macaron.plugins import get_plugin_manager

    (tmp_path / "apis").mkdir()
    (tmp_path / "macaron.yaml").write_text("name: bare\n")
    spec = "swagger: '2.0'\ninfo: {title: t, version: '1'}\npaths: {}\ndefinitions:\n" + textwrap.indent(textwrap.dedent(item("{table: items, hash_key: id}")), "  ")
    (tmp_path / "apis" / "shop.yaml").write_text(spec)
    with pytest.raises(SpecError, match="no installed plugin persists models"):
        create_app(tmp_path, plugin_manager=get_plugin_manager(load_entrypoints=False))
