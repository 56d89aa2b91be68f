"""The benchmark's bookstore in bare Flask: the same data and routes, no validation."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request

sys.path.insert(0, str(Path(__file__).parent / "bookstore"))
from bookstore.data import BOOKS

app = Flask(__name__)
_ids = itertools.count(1000)


@app.get("/v1/books")
def list_books() -> Any:
    limit = int(request.args.get("limit", 20))
    return jsonify({"books": BOOKS[:limit], "total": len(BOOKS)})


@app.post("/v1/books")
def add_book() -> Any:
    book = request.get_json()
    book["id"] = next(_ids)
    return jsonify(book), 201
