"""Fixed paths dispatched from macaron's table answer exactly as Flask's own routing, with every Flask feature at hand."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, g, request

from macaron import dispatch
from macaron.hookspecs import hookimpl
from service_maker import ServiceMaker

SPEC = """
paths:
  /books:
    get:
      operationId: listBooks
      x-bind-server: HANDLERS.list_books
      parameters: [{name: limit, in: query, type: integer, maximum: 5}]
      responses:
        200: {description: books, schema: {type: object, properties: {books: {type: array, items: {type: string}}}}}
    post:
      operationId: addBook
      x-bind-server: HANDLERS.add_book
      parameters: [{name: book, in: body, required: true, schema: {type: object, required: [title], properties: {title: {type: string}}}}]
      responses:
        201: {description: added, schema: {type: object, properties: {title: {type: string}}}}
  /books/{book_id}:
    get:
      operationId: getBook
      x-bind-server: HANDLERS.get_book
      parameters: [{name: book_id, in: path, required: true, type: integer}]
      responses:
        200: {description: a book, schema: {type: object, properties: {id: {type: integer}}}}
  /crash:
    get:
      operationId: crash
      x-bind-server: HANDLERS.crash
      responses:
        200: {description: never}
  /moved:
    get:
      operationId: moved
      x-bind-server: HANDLERS.moved
      responses:
        200: {description: a body and a relative Location, schema: {type: object}}
  /nothing:
    delete:
      operationId: nothing
      x-bind-server: HANDLERS.nothing
      responses:
        204: {description: no body}
  /flask:
    get:
      operationId: flaskFeatures
      x-bind-server: HANDLERS.flask_features
      responses:
        200: {description: what the handler saw of Flask, schema: {type: object, additionalProperties: true}}
"""

HANDLERS = """
from flask import Response, after_this_request, g, request, url_for

def list_books(limit):
    return {"books": ["a", "b", "c"][: limit or 3]}

def add_book(book):
    return {"title": book.title}, 201

def get_book(book_id):
    return {"id": book_id}

def crash():
    raise RuntimeError("boom")

def moved():
    return Response(b"{}", status=200, mimetype="application/json", headers={"Location": "/books/caf\\u00e9"})

def nothing():
    return None, 204

def flask_features():
    @after_this_request
    def mark(response):
        response.headers["X-After-This"] = "yes"
        return response

    return {
        "path": request.path,
        "args": dict(request.args),
        "endpoint": request.endpoint,
        "rule": request.url_rule.rule,
        "url_for": url_for(request.endpoint, page=2),
        "external": url_for(request.endpoint, _external=True),
        "g": g.get("seen_before"),
    }
"""

# Each request as (method, path, query, body): fixed paths, a path with a variable, and the ways around the table.
REQUESTS = [
    ("GET", "/books", "", None),
    ("GET", "/books", "limit=2", None),
    ("GET", "/books", "limit=9", None),  # 400
    ("GET", "/books", "limit=x", None),  # 400, malformed
    ("POST", "/books", "", b'{"title": "T"}'),
    ("POST", "/books", "", b'{"nope": 1}'),  # 400
    ("POST", "/books", "", b"{not json"),  # 400
    ("PUT", "/books", "", None),  # 405 from Flask
    ("HEAD", "/books", "", None),  # no body, through Flask
    ("OPTIONS", "/books", "", None),
    ("GET", "/books/", "", None),  # trailing slash: Flask's answer
    ("GET", "//books", "", None),
    ("GET", "/books/7", "", None),
    ("GET", "/books/x", "", None),  # 404 from the path's converter
    ("GET", "//books/7", "", None),
    ("GET", "/books/7/", "", None),
    ("POST", "/books/7", "", None),  # 405
    ("GET", "/b\u00f6cker", "", None),
    ("GET", "/crash", "", None),  # 500
    ("GET", "/moved", "", None),  # Location encoded by werkzeug
    ("DELETE", "/nothing", "", None),  # 204
    ("GET", "/nowhere", "", None),  # 404
]


def answer(app: Flask, method: str, path: str, query: str, body: bytes | None) -> tuple[int, list[tuple[str, str]], Any]:
    response = app.test_client().open(path, method=method, query_string=query, data=body, content_type="application/json" if body else None)
    headers = sorted((k, v) for k, v in response.headers.items() if k != "X-Request-ID")
    data = response.get_json(silent=True)
    if isinstance(data, dict):
        data.pop("request_id", None)
        data.pop("error_id", None)
    return response.status_code, headers, data if data is not None else response.data


def test_every_answer_from_the_table_is_the_one_flasks_routing_gives(services: ServiceMaker) -> None:
    app = services.app(SPEC, HANDLERS)
    assert ("GET", "/books") in app.fixed_routes()  # the table is in use with the installed Flask
    routed_by_flask = services.app(SPEC, HANDLERS)
    routed_by_flask._fixed_routes = {}  # an empty table: every request through Flask's own routing
    for method, path, query, body in REQUESTS:
        assert answer(app, method, path, query, body) == answer(routed_by_flask, method, path, query, body), (method, path, query)


def test_no_request_binds_a_url_adapter_of_its_own_unless_flask_must_answer(services: ServiceMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    app = services.app(SPEC, HANDLERS)
    bound: list[str] = []
    bind = app.url_map.bind_to_environ

    def counting_bind(environ: Any, **kwargs: Any) -> Any:
        bound.append(environ["PATH_INFO"])
        return bind(environ, **kwargs)

    monkeypatch.setattr(app.url_map, "bind_to_environ", counting_bind)
    client = app.test_client()
    assert client.get("/books").status_code == 200
    assert client.post("/books", json={"title": "T"}).status_code == 201
    assert client.get("/books/3").json == {"id": 3}
    assert bound == []
    assert client.get("/books/").status_code == 404  # Flask's own answer, from its own routing
    assert bound == ["/books/"]


class FlaskHooks:
    """A plugin using Flask's own request hooks, as an extension may."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl
    def startup(self, app: Flask, config: Any) -> None:
        @app.before_request
        def before() -> None:
            g.seen_before = request.path
            self.seen.append(f"before {request.endpoint}")

        @app.after_request
        def after(response: Any) -> Any:
            response.headers["X-After"] = "1"
            return response

        @app.teardown_request
        def teardown(exc: BaseException | None) -> None:
            self.seen.append(f"teardown {exc!r}")


def test_flasks_request_hooks_globals_and_url_for_work_on_a_fixed_path(services: ServiceMaker) -> None:
    hooks = FlaskHooks()
    app = services.app(SPEC, HANDLERS, plugins=(hooks,))
    app.config["PREFERRED_URL_SCHEME"] = "https"
    response = app.test_client().get("/flask?a=1", base_url="http://books.test")
    assert response.status_code == 200
    assert response.json == {
        "path": "/flask",
        "args": {"a": "1"},
        "endpoint": "x:get:/flask",
        "rule": "/flask",
        "url_for": "/flask?page=2",
        "external": "http://books.test/flask",
        "g": "/flask",
    }
    assert response.headers["X-After"] == "1"
    assert response.headers["X-After-This"] == "yes"
    assert hooks.seen == ["before x:get:/flask", "teardown None"]

    assert app.test_client().get("/crash").status_code == 500
    assert hooks.seen[-1] == "teardown None"  # handled by macaron's error handler, as under Flask's routing


def test_a_flask_configured_for_host_matching_or_trusted_hosts_keeps_its_own_routing(services: ServiceMaker) -> None:
    app = services.app(SPEC, HANDLERS)
    app.config["TRUSTED_HOSTS"] = ["books.test"]
    app._fixed_routes = None
    assert app.fixed_routes() == {}
    assert app.test_client().get("/books", base_url="http://evil.test").status_code == 400  # Flask's check of the host
    assert app.test_client().get("/books", base_url="http://books.test").status_code == 200


def test_the_installed_flask_has_the_context_layout_the_table_relies_on() -> None:
    # If a Flask release changes it, the table turns itself off and serving gets slower: this says so.
    assert dispatch._SUPPORTED
