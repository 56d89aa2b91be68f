"""Handlers of the benchmark's bookstore: models in, models out, as a service would write them."""

from __future__ import annotations

import itertools
from typing import Any

from bookstore.data import BOOKS
from macaron import apis

_ids = itertools.count(1000)


def list_books(limit: int) -> Any:
    Book = apis.bookstore.Book
    return apis.bookstore.BookList(books=[Book.from_json(book) for book in BOOKS[:limit]], total=len(BOOKS))


def add_book(book: Any) -> Any:
    book.id = next(_ids)
    return book
