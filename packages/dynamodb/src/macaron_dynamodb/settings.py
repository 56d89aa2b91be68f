"""What ``x-persist`` says about a table, checked against the definition at start-up.

Two forms, same keys::

    x-persist:                      # in the spec
      table: orders
      hash_key: customer_id
      range_key: order_id
      version: version
      ttl: expires_at
      indexes:
        by_status: {hash_key: status, range_key: created_at}
        by_total: {type: local, range_key: total, projection: keys_only}

    x-persist: shop.tables.Orders   # a class whose attributes carry the same keys
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from macaron.importing import DottedPathError, import_object
from macaron.spec import SpecError

BACKEND = "dynamodb"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
TABLE_KEYS = {"backend", "table", "hash_key", "range_key", "version", "ttl", "indexes", "read_capacity", "write_capacity"}
# PyMacaron's persistence classes named these differently; accepted so old classes keep working.
ALIASES = {"table_name": "table", "primary_key": "hash_key", "sort_key": "range_key"}
INDEX_KEYS = {"type", "hash_key", "range_key", "projection", "read_capacity", "write_capacity"}
PROJECTIONS = {"all": "ALL", "keys_only": "KEYS_ONLY"}


class NotOurs(Exception):
    """The x-persist value names another backend."""


@dataclass(frozen=True)
class IndexSpec:
    name: str
    local: bool
    hash_key: str
    range_key: str | None
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    non_key_attributes: tuple[str, ...] = ()
    read_capacity: int | None = None
    write_capacity: int | None = None


@dataclass(frozen=True)
class TableSpec:
    table: str
    hash_key: str
    range_key: str | None = None
    version: str | None = None
    ttl: str | None = None
    indexes: dict[str, IndexSpec] = field(default_factory=dict)
    read_capacity: int | None = None
    write_capacity: int | None = None
    key_types: dict[str, str] = field(default_factory=dict)  # every key attribute (table and indexes): "S" or "N"


class _Checker:
    def __init__(self, model: type, properties: dict[str, dict[str, Any]], where: str | None = None) -> None:
        self.model = model
        self.name: str = getattr(model, "_name", model.__name__)
        self.where = where or f"API '{getattr(model, '_api', '?')}'"
        self.pointer = f"/definitions/{self.name}/x-persist"
        self.properties = properties

    def error(self, message: str, suffix: str = "") -> SpecError:
        return SpecError(self.where, self.pointer + suffix, message)

    def kinds(self, prop: str) -> list[str]:
        schema = self.properties[prop]
        types = schema.get("type")
        if isinstance(types, list):
            return [str(t) for t in types]
        return [str(types)] if types is not None else []

    def property(self, prop: Any, what: str, suffix: str) -> str:
        if not isinstance(prop, str) or not prop:
            raise self.error(f"{what} must be the name of a property of {self.name}", suffix)
        if prop not in self.properties:
            known = ", ".join(sorted(self.properties)) or "none"
            raise self.error(f"{what} '{prop}' is not a property of {self.name} (its properties: {known})", suffix)
        return prop

    def key(self, prop: Any, what: str, suffix: str) -> tuple[str, str]:
        name = self.property(prop, what, suffix)
        kinds = self.kinds(name)
        if "null" in kinds:
            raise self.error(f"{what} '{name}' is nullable, and a key attribute always has a value", suffix)
        if kinds == ["string"]:
            return name, "S"
        if kinds in (["integer"], ["number"]):
            return name, "N"
        raise self.error(f"{what} '{name}' must be a string, integer or number property (it is {'/'.join(kinds) or 'untyped'})", suffix)

    def capacity(self, values: Mapping[str, Any], suffix: str) -> tuple[int | None, int | None]:
        read, write = values.get("read_capacity"), values.get("write_capacity")
        if (read is None) != (write is None):
            raise self.error("read_capacity and write_capacity go together (both for provisioned tables, neither for on-demand)", suffix)
        for label, value in (("read_capacity", read), ("write_capacity", write)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise self.error(f"{label} must be a positive integer", suffix)
        return read, write


def _from_class(dotted: str, checker: _Checker) -> dict[str, Any]:
    try:
        target = import_object(dotted)
    except DottedPathError as exc:
        raise checker.error(f"cannot import '{dotted}': {exc.reason}") from exc
    keys = TABLE_KEYS | set(ALIASES)
    return {key: getattr(target, key) for key in keys if getattr(target, key, None) is not None}


def parse(value: Any, model: type, properties: dict[str, dict[str, Any]], where: str | None = None) -> TableSpec:
    """The TableSpec of a definition's ``x-persist``; raises SpecError naming what is wrong (in ``where``, the spec file), NotOurs for other backends."""
    checker = _Checker(model, properties, where)
    if isinstance(value, str):
        raw = _from_class(value, checker)
    elif isinstance(value, Mapping):
        raw = dict(value)
    else:
        raise checker.error("x-persist must be a mapping (table, hash_key...) or the dotted path of a class that holds them")
    backend = raw.pop("backend", BACKEND)
    if backend != BACKEND:
        raise NotOurs(backend)
    for alias, key in ALIASES.items():
        if alias in raw:
            if key in raw:
                raise checker.error(f"give '{key}' or its old name '{alias}', not both")
            raw[key] = raw.pop(alias)
    unknown = sorted(set(raw) - TABLE_KEYS)
    if unknown:
        raise checker.error(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (known: {', '.join(sorted(TABLE_KEYS))})")

    table = raw.get("table")
    if not isinstance(table, str) or not NAME_PATTERN.match(table):
        raise checker.error("table must be a table name: 3 to 255 letters, digits, '_', '-' or '.'", "/table")
    if "hash_key" not in raw:
        raise checker.error("hash_key is required: the property that identifies an item")
    key_types: dict[str, str] = {}
    hash_key, key_types_hash = checker.key(raw["hash_key"], "hash_key", "/hash_key")
    key_types[hash_key] = key_types_hash
    range_key = None
    if raw.get("range_key") is not None:
        range_key, kind = checker.key(raw["range_key"], "range_key", "/range_key")
        if range_key == hash_key:
            raise checker.error("range_key must differ from hash_key", "/range_key")
        key_types[range_key] = kind

    version = None
    if raw.get("version") is not None:
        version = checker.property(raw["version"], "version", "/version")
        if [k for k in checker.kinds(version) if k != "null"] != ["integer"]:
            raise checker.error(f"version '{version}' must be an integer property (macaron counts the saves in it)", "/version")
        if version in key_types:
            raise checker.error(f"version '{version}' cannot also be a key", "/version")
    ttl = None
    if raw.get("ttl") is not None:
        ttl = checker.property(raw["ttl"], "ttl", "/ttl")
        if [k for k in checker.kinds(ttl) if k != "null"] not in (["integer"], ["number"]):
            raise checker.error(f"ttl '{ttl}' must be an integer property: the expiry time in seconds since the epoch, as DynamoDB wants it", "/ttl")

    read, write = checker.capacity(raw, "")
    indexes = _indexes(raw.get("indexes"), checker, hash_key, range_key, key_types, provisioned=read is not None)
    return TableSpec(
        table=table,
        hash_key=hash_key,
        range_key=range_key,
        version=version,
        ttl=ttl,
        indexes=indexes,
        read_capacity=read,
        write_capacity=write,
        key_types=key_types,
    )


def _indexes(
    raw: Any, checker: _Checker, hash_key: str, range_key: str | None, key_types: dict[str, str], provisioned: bool
) -> dict[str, IndexSpec]:
    if raw is None:
        return {}
    if isinstance(raw, list):
        items: list[tuple[str, Any]] = []
        for position, entry in enumerate(raw):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                raise checker.error("each index in a list needs a 'name'", f"/indexes/{position}")
            items.append((entry["name"], {k: v for k, v in entry.items() if k != "name"}))
    elif isinstance(raw, Mapping):
        items = list(raw.items())
    else:
        raise checker.error("indexes must map index names to {hash_key, range_key, type, projection}", "/indexes")
    indexes: dict[str, IndexSpec] = {}
    for name, entry in items:
        suffix = f"/indexes/{name}"
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise checker.error("an index name has 3 to 255 letters, digits, '_', '-' or '.'", suffix)
        if not isinstance(entry, Mapping):
            raise checker.error("an index is a mapping: {hash_key, range_key, type, projection}", suffix)
        unknown = sorted(set(entry) - INDEX_KEYS)
        if unknown:
            raise checker.error(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (known: {', '.join(sorted(INDEX_KEYS))})", suffix)
        kind = entry.get("type", "global")
        if kind not in ("global", "local"):
            raise checker.error("type is 'global' (the default) or 'local'", suffix + "/type")
        local = kind == "local"
        if local:
            if range_key is None:
                raise checker.error("a local index needs a table with a range_key", suffix)
            if entry.get("hash_key", hash_key) != hash_key:
                raise checker.error(f"a local index shares the table's hash_key '{hash_key}'", suffix + "/hash_key")
            if "range_key" not in entry:
                raise checker.error("a local index needs a range_key", suffix)
            if "read_capacity" in entry or "write_capacity" in entry:
                raise checker.error("a local index uses the table's capacity", suffix)
            index_hash = hash_key
        else:
            if "hash_key" not in entry:
                raise checker.error("a global index needs a hash_key", suffix)
            index_hash, kind_hash = checker.key(entry["hash_key"], "hash_key", suffix + "/hash_key")
            key_types[index_hash] = kind_hash
        index_range = None
        if entry.get("range_key") is not None:
            index_range, kind_range = checker.key(entry["range_key"], "range_key", suffix + "/range_key")
            if index_range == index_hash:
                raise checker.error("range_key must differ from hash_key", suffix + "/range_key")
            key_types[index_range] = kind_range
        projection, non_key = _projection(entry.get("projection", "all"), checker, suffix)
        read, write = checker.capacity(entry, suffix)
        if not local and provisioned and read is None:
            raise checker.error("the table is provisioned: give this index read_capacity and write_capacity too", suffix)
        if not local and not provisioned and read is not None:
            raise checker.error("the table is on-demand: an index cannot have read_capacity/write_capacity", suffix)
        indexes[name] = IndexSpec(name, local, index_hash, index_range, projection, non_key, read, write)
    return indexes


def _projection(value: Any, checker: _Checker, suffix: str) -> tuple[str, tuple[str, ...]]:
    if isinstance(value, str) and value.lower() in PROJECTIONS:
        return PROJECTIONS[value.lower()], ()
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        for prop in value:
            checker.property(prop, "projection attribute", suffix + "/projection")
        return "INCLUDE", tuple(value)
    raise checker.error("projection is 'all' (the default), 'keys_only' or a list of property names to copy", suffix + "/projection")
