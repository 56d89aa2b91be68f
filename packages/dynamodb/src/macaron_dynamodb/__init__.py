"""macaron-dynamodb: persist macaron API models to DynamoDB.

Mark a definition with ``x-persist`` (table, hash_key, range_key, version, ttl,
indexes) and its model class gains ``save``, ``load``, ``update``, ``delete``,
``query``, ``scan``, ``batch_get`` and ``batch_write``. See docs/dynamodb.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from macaron_dynamodb.errors import (
    DynamoDBError,
    DynamoDBUnavailable,
    InvalidCursor,
    ItemConflict,
    ItemExists,
    ItemNotFound,
    TableMissing,
    TransactionCancelled,
)

if TYPE_CHECKING:
    from macaron_dynamodb.persistence import (
        Attr,
        Page,
        Persistent,
        Table,
        Transaction,
        batch_write,
        modify,
        persisted,
        transaction,
        transaction_get,
    )
    from macaron_dynamodb.tables import TableMismatch, create_tables, delete_tables

# Loaded on first use: importing the package (as `macaron` does for every plugin, on
# every command) must not pay for pynamodb and botocore.
_LAZY = {
    **dict.fromkeys(("Attr", "Page", "Persistent", "Table", "Transaction", "batch_write", "modify", "persisted", "transaction", "transaction_get"), "persistence"),
    **dict.fromkeys(("TableMismatch", "create_tables", "delete_tables"), "tables"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'macaron_dynamodb' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"macaron_dynamodb.{module}"), name)
    globals()[name] = value
    return value

__all__ = [
    "Attr",
    "DynamoDBError",
    "DynamoDBUnavailable",
    "InvalidCursor",
    "ItemConflict",
    "ItemExists",
    "ItemNotFound",
    "Page",
    "Persistent",
    "Table",
    "TableMismatch",
    "TableMissing",
    "Transaction",
    "TransactionCancelled",
    "batch_write",
    "create_tables",
    "delete_tables",
    "modify",
    "persisted",
    "tables_of",
    "transaction",
    "transaction_get",
]


def tables_of(models: object) -> list[Table]:
    """The tables of the persisted models among ``models`` (``apis.shop``, a list of classes...), each once.

    The subtypes of a persisted base (a discriminator's ``allOf`` hierarchy) share its table.
    """
    from macaron_dynamodb.persistence import Persistent

    tables = [cls._table for cls in models if isinstance(cls, type) and issubclass(cls, Persistent)]  # type: ignore[attr-defined]
    return list({id(table): table for table in tables}.values())
