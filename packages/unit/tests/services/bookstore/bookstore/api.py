"""The bookstore's handlers, all correct: what they return is what the spec declares."""

from __future__ import annotations

import itertools
from typing import Any

from macaron import add_error, apis
from macaron.auth import get_userid

BookNotFound = add_error("BookNotFound", "BOOK_NOT_FOUND", 404)

BOOKS: dict[int, dict[str, Any]] = {
    1: {"id": 1, "title": "Dune", "price": 9.5, "tags": ["sf"], "author": {"name": "Frank Herbert", "country": "US"}},
    2: {"id": 2, "title": "Solaris", "price": 8.0, "tags": ["sf"], "author": {"name": "Stanislaw Lem", "country": "PL"}},
}
_ids = itertools.count(1000)


def list_books(limit: int, tag: str | None) -> Any:
    books = [book for book in BOOKS.values() if tag is None or tag in book.get("tags", [])]
    return apis.bookstore.BookList(books=[apis.bookstore.Book.from_json(book) for book in books[:limit]], total=len(books))


def add_book(book: Any) -> Any:
    book.id = next(_ids)  # not stored: every test run starts from the same two books
    return book, 201


def get_book(book_id: int) -> Any:
    if book_id not in BOOKS:
        raise BookNotFound(f"no book {book_id}", user_message="That book is not in the store.")
    return apis.bookstore.Book.from_json(BOOKS[book_id])


def delete_book(book_id: int) -> Any:
    if book_id not in BOOKS:
        raise BookNotFound(f"no book {book_id}")
    return None, 204


def get_author(name: str) -> Any:
    return {"name": name, "titles": [book["title"] for book in BOOKS.values() if book["author"]["name"] == name]}


def who_am_i() -> Any:
    return {"user": str(get_userid())}


def broken() -> Any:
    return apis.bookstore.Book.from_json(BOOKS[1])


def crash(n: int | None) -> Any:
    return {"count": len(BOOKS) / (n or 1)}
