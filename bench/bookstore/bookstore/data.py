"""The books every stack of the serving benchmark returns: the same data, built the same way."""

from __future__ import annotations

from typing import Any

BOOKS: list[dict[str, Any]] = [
    {
        "id": i,
        "title": f"The Book of Things, volume {i}",
        "isbn": f"{9780000000000 + i}",
        "price": 9.5 + i,
        "tags": ["fiction", "classic"],
        "author": {"name": f"Author {i % 7}", "country": "SE"},
    }
    for i in range(1, 101)
]
