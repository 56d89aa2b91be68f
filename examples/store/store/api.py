"""Handlers of the store API. The Item model is persisted (x-persist in apis/store.yaml)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from macaron import apis
from macaron_dynamodb import Attr, Persistent, persisted


def _items() -> type[Persistent]:
    # apis.store.Item is only known at run time; persisted() tells type checkers it has save/load/query.
    return persisted(apis.store.Item)


def create_item(item: Any) -> Any:
    """Store a new item; an existing id is a 409 ITEM_EXISTS."""
    stored = _items().from_json({**item.to_json(), "created_at": dt.datetime.now(dt.timezone.utc)})
    return stored.save(create=True), 201


def get_item(item_id: str) -> Any:
    """One item; a missing one is a 404 ITEM_NOT_FOUND."""
    return _items().load(item_id)


def update_item(item: Any, item_id: str) -> Any:
    """Replace an item. The body carries the version it was read at: a stale one is a 409 ITEM_CONFLICT."""
    current = _items().load(item_id)
    updated = _items().from_json({**item.to_json(), "id": item_id, "created_at": current.to_json()["created_at"]})
    return updated.save()


def delete_item(item_id: str) -> None:
    """Delete an item (404 if there is none)."""
    _items().load(item_id).delete()


def list_items(owner: str, limit: int, cursor: str | None = None, min_price: float | None = None) -> Any:
    """An owner's items, newest first, a page at a time (query on the by_owner index)."""
    page = _items().query(
        owner,
        index="by_owner",
        limit=limit,
        cursor=cursor,
        reverse=True,
        filter=Attr("price") >= min_price if min_price is not None else None,
    )
    return {"items": page.items, "cursor": page.cursor}
