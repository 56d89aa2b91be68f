"""Create the tables that persisted models declare, idempotently."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from macaron.models import model_name
from macaron_dynamodb.errors import DynamoDBError, TableMissing
from macaron_dynamodb.persistence import Table
from macaron_dynamodb.settings import IndexSpec, TableSpec

POLL_SECONDS = 0.2


class TableMismatch(Exception):
    """An existing table does not match what the spec declares; macaron does not change existing tables."""


def table_definition(name: str, spec: TableSpec) -> dict[str, Any]:
    """The CreateTable request of a TableSpec."""
    used = {spec.hash_key, *([spec.range_key] if spec.range_key else [])}
    for index in spec.indexes.values():
        used.add(index.hash_key)
        if index.range_key:
            used.add(index.range_key)
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": [{"AttributeName": attr, "AttributeType": spec.key_types[attr]} for attr in sorted(used)],
        "KeySchema": _key_schema(spec.hash_key, spec.range_key),
    }
    if spec.read_capacity is not None:
        request["BillingMode"] = "PROVISIONED"
        request["ProvisionedThroughput"] = {"ReadCapacityUnits": spec.read_capacity, "WriteCapacityUnits": spec.write_capacity}
    else:
        request["BillingMode"] = "PAY_PER_REQUEST"
    globals_ = [_index(index) for index in spec.indexes.values() if not index.local]
    locals_ = [_index(index) for index in spec.indexes.values() if index.local]
    if globals_:
        request["GlobalSecondaryIndexes"] = globals_
    if locals_:
        request["LocalSecondaryIndexes"] = locals_
    return request


def _key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


def _index(index: IndexSpec) -> dict[str, Any]:
    projection: dict[str, Any] = {"ProjectionType": index.projection}
    if index.non_key_attributes:
        projection["NonKeyAttributes"] = list(index.non_key_attributes)
    result: dict[str, Any] = {"IndexName": index.name, "KeySchema": _key_schema(index.hash_key, index.range_key), "Projection": projection}
    if index.read_capacity is not None:
        result["ProvisionedThroughput"] = {"ReadCapacityUnits": index.read_capacity, "WriteCapacityUnits": index.write_capacity}
    return result


def _describe(table: Table) -> dict[str, Any] | None:
    try:
        description: dict[str, Any] = table.backend.call("DescribeTable", {"TableName": table.name})["Table"]
        return description
    except TableMissing:
        return None


def _mismatches(table: Table, description: dict[str, Any]) -> list[str]:
    spec = table.spec
    problems: list[str] = []
    keys = {entry["KeyType"]: entry["AttributeName"] for entry in description.get("KeySchema", [])}
    if keys.get("HASH") != spec.hash_key or keys.get("RANGE") != spec.range_key:
        problems.append(f"its key is ({keys.get('HASH')}, {keys.get('RANGE')}), the spec says ({spec.hash_key}, {spec.range_key})")
    types = {entry["AttributeName"]: entry["AttributeType"] for entry in description.get("AttributeDefinitions", [])}
    for name, kind in types.items():
        if name in spec.key_types and spec.key_types[name] != kind:
            problems.append(f"attribute '{name}' is of type {kind}, the spec says {spec.key_types[name]}")
    existing = {
        index["IndexName"]: (kind, {entry["KeyType"]: entry["AttributeName"] for entry in index.get("KeySchema", [])})
        for kind, field in (("global", "GlobalSecondaryIndexes"), ("local", "LocalSecondaryIndexes"))
        for index in description.get(field) or []
    }
    for name, index in spec.indexes.items():
        if name not in existing:
            problems.append(f"it has no {'local' if index.local else 'global'} index '{name}'")
            continue
        kind, index_keys = existing[name]
        if kind != ("local" if index.local else "global") or index_keys.get("HASH") != index.hash_key or index_keys.get("RANGE") != index.range_key:
            problems.append(
                f"its index '{name}' is {kind} on ({index_keys.get('HASH')}, {index_keys.get('RANGE')}), "
                f"the spec says {'local' if index.local else 'global'} on ({index.hash_key}, {index.range_key})"
            )
    return problems


def _wait_active(table: Table, deadline: float) -> None:
    while True:
        description = _describe(table)
        if description is not None and description.get("TableStatus") == "ACTIVE":
            indexes = description.get("GlobalSecondaryIndexes") or []
            if all(index.get("IndexStatus", "ACTIVE") == "ACTIVE" for index in indexes):
                return
        if time.monotonic() > deadline:
            status = description.get("TableStatus") if description else "missing"
            raise TimeoutError(f"table {table.name} is still {status}, not ACTIVE")
        time.sleep(POLL_SECONDS)


def _ensure_ttl(table: Table, deadline: float) -> str | None:
    ttl = table.spec.ttl
    if ttl is None:
        return None
    current = table.backend.call("DescribeTimeToLive", {"TableName": table.name}).get("TimeToLiveDescription", {})
    status, attribute = current.get("TimeToLiveStatus"), current.get("AttributeName")
    if status in ("ENABLED", "ENABLING"):
        if attribute != ttl:
            raise TableMismatch(f"table {table.name}: time to live is on '{attribute}', the spec says '{ttl}'")
        return None
    _wait_active(table, deadline)  # DynamoDB refuses TTL changes while a table is being created
    table.backend.call("UpdateTimeToLive", {"TableName": table.name, "TimeToLiveSpecification": {"Enabled": True, "AttributeName": ttl}})
    return f"time to live on '{ttl}'"


def create_tables(tables: Iterable[Table], wait: bool = False, timeout: float = 300.0) -> list[str]:
    """Create every missing table, check the existing ones; one line per table says what happened.

    Raises TableMismatch when an existing table differs from its spec (keys, key
    types, indexes): changing a live table is left to its owner.
    """
    deadline = time.monotonic() + timeout
    report: list[str] = []
    seen: dict[str, Table] = {}
    for table in tables:
        if table.name in seen:
            # One table shared by several definitions (single-table design) must be declared alike.
            other = seen[table.name]
            if (other.spec.hash_key, other.spec.range_key) != (table.spec.hash_key, table.spec.range_key):
                raise TableMismatch(f"table {table.name}: {model_name(other.model)} and {model_name(table.model)} declare different keys")
            continue
        seen[table.name] = table
        description = _describe(table)
        if description is None:
            try:
                table.backend.call("CreateTable", table_definition(table.name, table.spec))
                state = "created"
            except DynamoDBError as exc:
                if "ResourceInUseException" not in exc.detail:  # created meanwhile by someone else: fine
                    raise
                state = "exists"
        else:
            problems = _mismatches(table, description)
            if problems:
                raise TableMismatch(f"table {table.name} exists but differs from {model_name(table.model)}'s x-persist: {'; '.join(problems)}")
            state = "exists"
        if wait:
            _wait_active(table, deadline)
        extra = _ensure_ttl(table, deadline)
        report.append(f"{table.name}: {state}" + (f", {extra}" if extra else "") + (", active" if wait else ""))
    return report


def delete_tables(tables: Iterable[Table]) -> list[str]:
    """Delete these tables (tests and local development); missing ones are skipped."""
    report = []
    for table in tables:
        try:
            table.backend.call("DeleteTable", {"TableName": table.name})
            report.append(f"{table.name}: deleted")
        except TableMissing:
            report.append(f"{table.name}: absent")
    return report
