"""The calling service of the client tests: each endpoint calls the items service through its client."""

from __future__ import annotations

import datetime as dt
from typing import Any

from macaron import apis


def show_item(item_id: int) -> Any:
    item = apis.items.client.get_item(item_id=item_id)
    assert isinstance(item, apis.items.Item)
    assert item.added is None or isinstance(item.added, dt.date)
    return item


def add_item(item: Any) -> Any:
    created = apis.items.client.create_item(apis.items.Item(name=item.name, price=item.price, added=dt.date(2024, 5, 1)))
    return created, 201


def relay() -> Any:
    return apis.items.client.whoami(_forward_auth=True).to_json()
