"""The called service of the client tests: items in memory, a slow call, a flaky call, an echo of what it received."""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import request

from macaron import add_error, apis

ItemNotFound = add_error("ItemNotFound", "ITEM_NOT_FOUND", 404)
NotYet = add_error("NotYet", "NOT_YET", 503)
PriceTooHigh = add_error("PriceTooHigh", "PRICE_TOO_HIGH", 422)

_items: dict[int, dict[str, Any]] = {1: {"id": 1, "name": "teapot", "price": 12.5, "added": "2024-03-01"}}
_attempts: dict[str, int] = {}
_lock = threading.Lock()


def get_item(item_id: int) -> Any:
    if item_id not in _items:
        raise ItemNotFound(f"no item {item_id}", user_message="That item does not exist.")
    return apis.items.Item.from_json(_items[item_id])


def create_item(item: Any) -> Any:
    if item.price > 1000:  # a rule of this service, which its spec cannot say
        raise PriceTooHigh("price over the limit", errors=[{"field": "/body/price", "message": "is over 1000"}], limit=1000)
    with _lock:
        item.id = max(_items) + 1
        _items[item.id] = item.to_json()
    return item, 201


def slow(ms: int) -> Any:
    time.sleep(ms / 1000)
    return {}


def flaky(key: str, fail: int) -> Any:
    with _lock:
        _attempts[key] = _attempts.get(key, 0) + 1
        attempts = _attempts[key]
    if attempts <= fail:
        raise NotYet(f"attempt {attempts} of {key} fails on purpose")
    return {"attempts": attempts}


def whoami() -> Any:
    return {
        "request_id": request.headers.get("X-Request-ID"),
        "authorization": request.headers.get("Authorization"),
        "call_chain": request.headers.get("X-Call-Chain"),
    }
