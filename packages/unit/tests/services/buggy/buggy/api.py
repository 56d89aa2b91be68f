"""Handlers of the buggy API; each bug is deliberate."""

from __future__ import annotations

from typing import Any

from macaron import add_error

ItemNotFound = add_error("ItemNotFound", "ITEM_NOT_FOUND", 404)
ITEMS = {1: "bread", 2: "butter", 3: "jam"}


def split(total: int, people: int) -> Any:
    return {"share": total // people}  # ZeroDivisionError when people == 0


def get_item(item_id: int) -> Any:
    if item_id not in ITEMS:
        raise ItemNotFound(f"no item {item_id}")  # 404 is not in the spec's responses
    return {"id": item_id, "name": ITEMS[item_id]}
