"""The benchmark's bookstore in FastAPI: pydantic models mirroring the spec, served by uvicorn[standard]."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query
from pydantic import BaseModel, Field

sys.path.insert(0, str(Path(__file__).parent / "bookstore"))
from bookstore.data import BOOKS


class Author(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    country: str | None = Field(default=None, min_length=2, max_length=2)


class Book(BaseModel):
    id: int | None = Field(default=None, ge=1)
    title: str = Field(min_length=1, max_length=200)
    isbn: str | None = Field(default=None, pattern=r"^[0-9]{13}$")
    price: float = Field(ge=0)
    tags: list[Annotated[str, Field(max_length=30)]] | None = Field(default=None, max_length=10)
    author: Author


class BookList(BaseModel):
    books: list[Book]
    total: int = Field(ge=0)


app = FastAPI()
_ids = itertools.count(1000)


@app.get("/v1/books", response_model=BookList, response_model_exclude_none=True)
async def list_books(limit: Annotated[int, Query(ge=1, le=100)] = 20) -> BookList:
    return BookList(books=[Book(**book) for book in BOOKS[:limit]], total=len(BOOKS))


@app.post("/v1/books", response_model=Book, status_code=201, response_model_exclude_none=True)
async def add_book(book: Book) -> Book:
    book.id = next(_ids)
    return book
