"""Every Error body macaron writes obeys the schema the operation declares for its status, in every dialect.

For Swagger 2.0, OpenAPI 3.0 and 3.1, a service whose spec declares a minimal ``Error``
(``status``, ``error``, ``error_description``) and one declaring the fullest documented
``Error``: each kind of error macaron produces (validation, malformed JSON, 413, 415, 401
and 403 from auth, a raised error, a crash, a broken response, 502/503/504 from a call to
another service, 404 and 405 for paths no operation serves) is checked against the declared
schema by the engine's own validator and, independently, by the ``jsonschema`` package
with every object closed (macaron's default rule). The request id is in ``X-Request-ID``.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema
import pytest
import yaml
from flask import Flask

from macaron import service_of
from macaron.error_bodies import OWN_FIELDS
from macaron.validation import Checker
from macaron.variants import response_variant
from service_maker import ServiceMaker

DIALECTS = ("swagger2", "openapi30", "openapi31")

MINIMAL_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["status", "error", "error_description"],
    "properties": {"status": {"type": "integer"}, "error": {"type": "string"}, "error_description": {"type": "string"}},
}
# The fullest Error the docs describe (docs/operations.md, "Error bodies").
FULL_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["status", "error", "error_description", "error_id"],
    "properties": {
        "status": {"type": "integer"},
        "error": {"type": "string"},
        "error_description": {"type": "string"},
        "error_id": {"type": "string"},
        "user_message": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "required": ["field", "message"], "properties": {"field": {"type": "string"}, "message": {"type": "string"}}},
        },
    },
}
ERRORS = {"minimal": MINIMAL_ERROR, "full": FULL_ERROR}

ITEM: dict[str, Any] = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
SECRET = "error-bodies-test-secret-0123456789abcdef"

HANDLERS = """
from macaron import MacaronException, add_error, apis
from macaron.auth import requires_auth

ItemNotFound = add_error("ItemNotFound", "ITEM_NOT_FOUND", 404)


class Taken(MacaronException):
    code = "TAKEN"
    status = 409


def get_item(item_id, limit):
    if item_id == 404:
        raise ItemNotFound(f"no item {item_id}")
    if item_id == 409:
        raise Taken("that name is taken", user_message="Pick another name.", taken_by="someone")  # an extra field
    return {"name": str(item_id)}


def add_item(item):
    return {"name": item.name}


def crash():
    raise ValueError("a bug")


def broken():
    return {"name": "x", "colour": "red"}  # a field Item lacks


def secure():
    return {"name": "secret"}


@requires_auth(scopes=["admin"])
def admin():
    return {"name": "admin"}


def remote(mode):
    apis.remote.client.get_thing(mode=mode)
    return {"name": mode}


def plain():
    raise ItemNotFound("no such thing")
"""

REMOTE_SPEC = """
swagger: '2.0'
info: {title: remote, version: '1'}
produces: [application/json]
paths:
  /thing/{mode}:
    get:
      operationId: getThing
      x-bind-client: get_thing
      x-bind-server: HANDLERS.remote  # served by the other service, never here
      parameters: [{name: mode, in: path, required: true, type: string}]
      responses:
        200: {description: ok, schema: {type: object, properties: {a: {type: string}}}}
        default: {description: an error}
"""


class Remote(BaseHTTPRequestHandler):
    """Another service, answering /thing/<mode>: bad (a body breaking its spec), error (an Error), slow, down."""

    def do_GET(self) -> None:
        mode = self.path.rsplit("/", 1)[-1]
        if mode == "down":  # the connection closed before any answer
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "slow":
            time.sleep(2.5)
        status, body = (200, {"a": 1}) if mode != "error" else (409, {"status": 409, "error": "CONFLICT", "error_description": "the remote refused", "error_id": "ab" * 16, "errors": [{"field": "/x", "message": "no"}], "hint": "theirs"})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def remote_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Remote)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _operations(dialect: str) -> dict[str, Any]:
    """The paths of the service, with responses written as the dialect writes them."""
    swagger = dialect == "swagger2"
    prefix = "#/definitions/" if swagger else "#/components/schemas/"

    def response(name: str | None, description: str = "a response") -> dict[str, Any]:
        if name is None:
            return {"description": description}
        schema = {"$ref": prefix + name}
        return {"description": description, "schema": schema} if swagger else {"description": description, "content": {"application/json": {"schema": schema}}}

    def parameter(name: str, where: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
        if swagger:
            return {"name": name, "in": where, "required": required, **schema}
        return {"name": name, "in": where, "required": required, "schema": schema}

    errors = {"400": response("Error"), "default": response("Error")}

    def operation(handler: str, parameters: list[dict[str, Any]] | None = None, responses: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
        return {"operationId": handler, "x-bind-server": f"HANDLERS.{handler}", "parameters": parameters or [], "responses": responses or {"200": response("Item"), **errors}, **more}

    add = operation("add_item", responses={"200": response("Item"), **errors})
    if swagger:
        add["parameters"] = [{"name": "item", "in": "body", "required": True, "schema": {"$ref": prefix + "Item"}}]
    else:
        add["requestBody"] = {"required": True, "content": {"application/json": {"schema": {"$ref": prefix + "Item"}}}}
    return {
        "/items/{item_id}": {
            "get": operation("get_item", [parameter("item_id", "path", {"type": "integer"}, True), parameter("limit", "query", {"type": "integer", "maximum": 10})]),
        },
        "/items": {"post": add},
        "/crash": {"get": operation("crash")},
        "/broken": {"get": operation("broken")},
        "/secure": {"get": operation("secure", security=[{"jwt": []}])},
        "/admin": {"get": operation("admin")},
        "/remote/{mode}": {"get": operation("remote", [parameter("mode", "path", {"type": "string"}, True)])},
        "/plain": {"get": operation("plain", responses={"200": response("Item")})},  # declares no error: the full body
    }


def spec_text(dialect: str, error: dict[str, Any], more: dict[str, Any] | None = None) -> str:
    """The spec in ``dialect``, with ``error`` as its Error (and ``more`` schemas beside it; REF in them names where they live)."""
    where = "#/definitions/" if dialect == "swagger2" else "#/components/schemas/"
    schemas = json.loads(json.dumps({"Item": ITEM, "Error": error, **(more or {})}).replace("REF/", where))
    if dialect == "swagger2":
        document: dict[str, Any] = {
            "swagger": "2.0",
            "info": {"title": "x", "version": "1"},
            "basePath": "/v1",
            "produces": ["application/json"],
            "consumes": ["application/json"],
            "securityDefinitions": {"jwt": {"type": "apiKey", "in": "header", "name": "Authorization"}},
            "paths": _operations(dialect),
            "definitions": schemas,
        }
    else:
        document = {
            "openapi": "3.0.3" if dialect == "openapi30" else "3.1.0",
            "info": {"title": "x", "version": "1"},
            "servers": [{"url": "/v1"}],
            "paths": _operations(dialect),
            "components": {"schemas": schemas, "securitySchemes": {"jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        }
    return yaml.safe_dump(document, sort_keys=False)


class Served:
    """One service of the matrix, with what is needed to check its answers."""

    def __init__(self, app: Flask, dialect: str, document: dict[str, Any]) -> None:
        self.app = app
        self.client = app.test_client()
        self.dialect = dialect
        self.document = document
        self.service = service_of(app)

    def declared(self, path: str, method: str, status: int) -> tuple[dict[str, Any] | None, Checker | None]:
        """The schema the operation (or, for a path no operation serves, the spec's Error) declares for ``status``; the engine's checker of it."""
        api = self.service.apis["x"]
        operation = next((op for op in api.operations if op.method == method and path_matches(op.path, path)), None)
        if operation is None:
            error = {"$ref": "#/definitions/Error"}
            return self.raw_schema("Error"), Checker(response_variant(error, api.definitions), api.definitions)
        endpoint = next(e for e in self.service.endpoints if e.operation is operation)
        key = status if status in operation.responses else ("default" if "default" in operation.responses else None)
        if key is None or operation.responses[key].schema is None:
            return None, None
        raw = self.document["paths"][operation.path[len("/v1") :]][method]["responses"][str(key)]
        reference = raw["schema"] if self.dialect == "swagger2" else raw["content"]["application/json"]["schema"]
        return self.raw_schema(reference["$ref"].rsplit("/", 1)[-1]), endpoint.response_checkers[key]

    def raw_schema(self, name: str) -> dict[str, Any]:
        """The named schema as the spec file has it, every object closed: unknown fields rejected, as macaron's default rule."""
        if self.dialect == "swagger2":
            schemas = self.document["definitions"]
        else:
            schemas = self.document["components"]["schemas"]
        return close(copy.deepcopy(schemas[name]))


def path_matches(template: str, path: str) -> bool:
    parts, wanted = template.split("/"), path.split("?")[0].split("/")
    return len(parts) == len(wanted) and all(p == w or (p.startswith("{") and p.endswith("}")) for p, w in zip(parts, wanted, strict=True))


def close(schema: Any) -> Any:
    """Independently of macaron: every object schema that lists properties allows no others."""
    if isinstance(schema, dict):
        for value in schema.values():
            close(value)
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        for value in schema:
            close(value)
    return schema


@pytest.fixture(params=[(dialect, error) for dialect in DIALECTS for error in ERRORS], ids=lambda p: f"{p[0]}-{p[1]}")
def served(request: pytest.FixtureRequest, services: ServiceMaker, remote_url: str) -> Served:
    dialect, error = request.param
    app = build(services, remote_url, dialect, ERRORS[error], max_body_size=300, clients={"remote": {"url": remote_url, "retries": 0, "read_timeout": 1.0}})
    return Served(app, dialect, yaml.safe_load(spec_text(dialect, ERRORS[error])))


def build(
    services: ServiceMaker, remote_url: str, dialect: str, error: dict[str, Any], plugins: tuple[Any, ...] = (), more: dict[str, Any] | None = None, **config: Any
) -> Flask:
    """The service of ``dialect`` with ``error`` as its Error."""
    settings = {"jwt_secret": SECRET, "clients": {"remote": {"url": remote_url}}, **config}
    root = services.write(spec_text(dialect, error, more), HANDLERS, header=False, config=settings, files={"apis/remote.yaml": REMOTE_SPEC})
    return services.build(root, plugins)


def token(scopes: list[str] | None = None) -> str:
    from macaron.auth import generate_token

    return generate_token("user-1", scopes=scopes)


# (what, method, path, request kwargs, status expected, error code expected)
CASES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    ("validation", "get", "/v1/items/abc?limit=99", {}, 400, "INVALID_PARAMETER"),
    ("invalid body", "post", "/v1/items", {"json": {"colour": "red"}}, 400, "INVALID_PARAMETER"),
    ("malformed JSON", "post", "/v1/items", {"data": b"{not json", "content_type": "application/json"}, 400, "MALFORMED_JSON"),
    ("too large", "post", "/v1/items", {"data": b'{"name": "' + b"x" * 400 + b'"}', "content_type": "application/json"}, 413, "REQUEST_TOO_LARGE"),
    ("unsupported type", "post", "/v1/items", {"data": b"name=x", "content_type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("no token", "get", "/v1/secure", {}, 401, "AUTHORIZATION_HEADER_MISSING"),
    ("bad token", "get", "/v1/secure", {"headers": {"Authorization": "Bearer not-a-jwt"}}, 401, "TOKEN_INVALID"),
    ("missing scope", "get", "/v1/admin", {"headers": {"Authorization": "TOKEN"}}, 403, "INSUFFICIENT_SCOPE"),
    ("raised", "get", "/v1/items/404", {}, 404, "ITEM_NOT_FOUND"),
    ("raised with extras", "get", "/v1/items/409", {}, 409, "TAKEN"),
    ("crash", "get", "/v1/crash", {}, 500, "SERVER_ERROR"),
    ("broken response", "get", "/v1/broken", {}, 500, "BAD_RESPONSE"),
    ("remote broke its spec", "get", "/v1/remote/bad", {}, 502, "BAD_REMOTE_RESPONSE"),
    ("remote down", "get", "/v1/remote/down", {}, 503, "REMOTE_UNAVAILABLE"),
    ("remote timeout", "get", "/v1/remote/slow", {}, 504, "REMOTE_TIMEOUT"),
    ("remote error passed on", "get", "/v1/remote/error", {}, 409, "CONFLICT"),
    ("no route", "get", "/v1/nothing/here", {}, 404, "NOT_FOUND"),
    ("wrong method", "delete", "/v1/crash", {}, 405, "METHOD_NOT_ALLOWED"),
]


def call(served: Served, method: str, path: str, kwargs: dict[str, Any]) -> Any:
    kwargs = copy.deepcopy(kwargs)
    if kwargs.get("headers", {}).get("Authorization") == "TOKEN":
        kwargs["headers"]["Authorization"] = f"Bearer {token(['reader'])}"
    return getattr(served.client, method)(path, **kwargs)


@pytest.mark.parametrize(("what", "method", "path", "kwargs", "status", "code"), CASES, ids=[case[0] for case in CASES])
def test_every_error_body_obeys_the_declared_schema(served: Served, what: str, method: str, path: str, kwargs: dict[str, Any], status: int, code: str) -> None:
    response = call(served, method, path, kwargs)
    body = response.get_json()
    assert (response.status_code, body["error"]) == (status, code), body
    request_id = response.headers["X-Request-ID"]
    assert request_id
    schema, checker = served.declared(path, method, status)
    assert schema is not None and checker is not None
    assert checker.problems(body) == [], body  # the engine's validator, as for handler responses
    document = dict(schema, definitions={}) if served.dialect != "openapi31" else schema
    validator = jsonschema.Draft202012Validator if served.dialect == "openapi31" else jsonschema.Draft4Validator
    validator(document).validate(body)  # independently
    # What the schema has is filled; the rest left out.
    declared = set(schema["properties"])
    assert {"status", "error", "error_description"} <= set(body) <= declared
    if "error_id" in declared:
        assert body["error_id"]
    if "request_id" in declared:
        assert body["request_id"] == request_id
    if "errors" in declared and code == "INVALID_PARAMETER":
        assert body["errors"]
    if status == 400 and code == "INVALID_PARAMETER":
        assert body["error_description"].count(":") >= 1  # every problem is still named in the description


def test_an_operation_that_declares_no_error_schema_gets_the_full_body(served: Served) -> None:
    response = served.client.get("/v1/plain")
    body = response.get_json()
    assert response.status_code == 404
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert {"status", "error", "error_description", "error_id", "request_id"} <= set(body)


def test_a_minimal_error_gets_no_field_it_lacks(services: ServiceMaker, remote_url: str) -> None:
    client = build(services, remote_url, "openapi30", MINIMAL_ERROR).test_client()
    body = client.get("/v1/items/abc").get_json()
    assert set(body) == {"status", "error", "error_description"}
    assert body["error_description"].startswith("1 problem in the request: /path/item_id:")


def test_the_full_error_gets_every_field_macaron_writes(services: ServiceMaker, remote_url: str) -> None:
    client = build(services, remote_url, "swagger2", FULL_ERROR).test_client()
    response = client.get("/v1/items/abc?limit=99")
    body = response.get_json()
    assert set(body) == OWN_FIELDS - {"user_message"}
    assert {p["field"] for p in body["errors"]} == {"/path/item_id", "/query/limit"}
    assert client.get("/v1/items/409").get_json()["user_message"] == "Pick another name."


def test_with_unknown_fields_accepted_the_full_body_goes_out(services: ServiceMaker, remote_url: str) -> None:
    client = build(services, remote_url, "openapi31", MINIMAL_ERROR, reject_unknown_fields=False).test_client()
    body = client.get("/v1/items/409").get_json()
    assert {"error_id", "request_id", "user_message", "taken_by"} <= set(body)


def test_an_error_schema_naming_an_extra_field_gets_it(services: ServiceMaker, remote_url: str) -> None:
    error = copy.deepcopy(MINIMAL_ERROR)
    error["properties"]["taken_by"] = {"type": "string"}
    body = build(services, remote_url, "swagger2", error).test_client().get("/v1/items/409").get_json()
    assert body == {"status": 409, "error": "TAKEN", "error_description": "that name is taken", "taken_by": "someone"}


def test_reports_and_hooks_still_see_the_full_body(services: ServiceMaker, remote_url: str) -> None:
    from macaron import hookimpl

    seen: list[dict[str, Any]] = []

    class Watcher:
        @hookimpl(trylast=True)
        def on_error(self, error: dict[str, Any], exception: BaseException | None, operation: Any) -> None:
            seen.append(dict(error))

    response = build(services, remote_url, "swagger2", MINIMAL_ERROR, plugins=(Watcher(),)).test_client().get("/v1/crash")
    assert set(response.get_json()) == {"status", "error", "error_description"}
    assert seen[-1]["error_id"] and seen[-1]["request_id"] == response.headers["X-Request-ID"]


def test_an_error_schema_macaron_cannot_fill_is_named_at_start_up(services: ServiceMaker, remote_url: str, caplog: pytest.LogCaptureFixture) -> None:
    error = copy.deepcopy(MINIMAL_ERROR)
    error["required"].append("code")
    error["properties"]["code"] = {"type": "integer"}
    with caplog.at_level("WARNING", logger="macaron"):
        build(services, remote_url, "swagger2", error)
    assert "macaron's Error bodies cannot match the schema declared for status" in caplog.text
    assert "/code: is required" in caplog.text


def test_the_documented_fullest_error_is_the_scaffolds_and_the_one_tested_here() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    text = (root / "docs" / "operations.md").read_text()
    section = text.split("## Error bodies", 1)[1].split("\n## ", 1)[0]
    documented = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])["Error"]
    template = (root / "packages" / "core" / "src" / "macaron" / "scaffold" / "template" / "apis" / "__name__.yaml.tmpl").read_text()
    scaffold = yaml.safe_load(template.replace("{{name}}", "x"))["definitions"]["Error"]
    assert documented == scaffold == FULL_ERROR
    assert set(FULL_ERROR["properties"]) == OWN_FIELDS  # every field macaron writes, and no other


def test_a_path_under_no_api_gets_the_full_body(served: Served) -> None:
    response = served.client.get("/elsewhere")  # the API's base path is /v1
    body = response.get_json()
    assert response.status_code == 404 and body["error"] == "NOT_FOUND"
    assert body["request_id"] == response.headers["X-Request-ID"] and body["error_id"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_an_error_composed_with_all_of_gets_the_fields_of_all_its_parts(services: ServiceMaker, remote_url: str, dialect: str) -> None:
    # Closed over the union of its parts (a part's open copy in draft 4; in 3.1 as well), as handler responses are.
    error = {"allOf": [{"$ref": "REF/BaseError"}, {"type": "object", "properties": {"user_message": {"type": "string"}}}]}
    app = build(services, remote_url, dialect, error, more={"BaseError": MINIMAL_ERROR})
    response = app.test_client().get("/v1/items/409")
    body = response.get_json()
    assert body == {"status": 409, "error": "TAKEN", "error_description": "that name is taken", "user_message": "Pick another name."}
    endpoint = next(e for e in service_of(app).endpoints if e.operation.operation_id == "get_item")
    assert endpoint.response_checkers["default"].problems(body) == []


def test_an_openapi31_error_closed_with_unevaluated_properties_is_fitted(services: ServiceMaker, remote_url: str) -> None:
    # anyOf beside the object's own members: the engine closes it with unevaluatedProperties: false.
    error = {**MINIMAL_ERROR, "anyOf": [{"properties": {"user_message": {"type": "string"}}}, {"properties": {"error_id": {"type": "string"}}}]}
    app = build(services, remote_url, "openapi31", error)
    endpoint = next(e for e in service_of(app).endpoints if e.operation.operation_id == "get_item")
    assert "unevaluatedProperties" in json.dumps(service_of(app).apis["x"].definitions["Error"])
    for path in ("/v1/items/409", "/v1/items/abc", "/v1/crash"):
        body = app.test_client().get(path).get_json()
        assert endpoint.response_checkers["default"].problems(body) == [], body
        assert "request_id" not in body and "errors" not in body and {"status", "error", "error_description"} <= set(body)


@pytest.mark.parametrize(("key", "named"), [("default", "declared for default ("), ("4XX", "declared for 4XX ("), (422, "declared for status 422 (")])
def test_the_warning_names_the_response_the_schema_is_declared_for(key: int | str, named: str, caplog: pytest.LogCaptureFixture) -> None:
    """Not the status probed for it (500 for ``default``), which the spec's author never wrote."""
    from macaron.error_bodies import operation_fits
    from macaron.validation import Checker

    # A property of its own per case: the validators, and so the warnings, are one per schema.
    schema = {"type": "object", "required": [f"code_{key}"], "properties": {f"code_{key}": {"type": "string"}}, "additionalProperties": False}
    with caplog.at_level("WARNING", logger="macaron"):
        operation_fits({key: Checker(schema, {})}, {key: schema}, {}, "apis/x.yaml: operation x")
    assert named in caplog.text
