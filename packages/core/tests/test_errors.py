"""The Error JSON on every non-2xx response, and the on_error hook."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask.testing import FlaskClient

from macaron import hookimpl
from macaron.spec import Operation
from service_maker import ServiceMaker

SPEC = """
paths:
  /items:
    post:
      x-bind-server: HANDLERS.create
      parameters:
        - {name: item, in: body, required: true, schema: {$ref: '#/definitions/Item'}}
      responses:
        201: {description: ok, schema: {$ref: '#/definitions/Item'}}
  /fail/{how}:
    get:
      operationId: fail
      x-bind-server: HANDLERS.fail
      parameters:
        - {name: how, in: path, required: true, type: string}
      responses:
        200: {description: ok}
definitions:
  Item:
    type: object
    properties:
      name: {type: string}
"""

HANDLERS = """
from macaron import MacaronException, add_error

class OutOfStock(MacaronException):
    code = "OUT_OF_STOCK"
    status = 409

Forbidden = add_error("Forbidden", "NOT_YOURS", 403)

def create(item):
    return item, 201

def fail(how):
    if how == "subclass":
        raise OutOfStock("sku 12 is out of stock", user_message="Sorry, sold out.")
    if how == "added":
        raise Forbidden("user 3 does not own item 4", user_message="Not yours.")
    if how == "returned":
        return Forbidden("returned, not raised")
    if how == "abort":
        from flask import abort
        abort(401, "who are you?")
    if how == "teapot":
        from werkzeug.exceptions import ImATeapot
        raise ImATeapot()
    raise KeyError("database password is hunter2")
"""

ERROR_KEYS = {"status", "error", "error_description", "error_id"}


@pytest.fixture
def client(services: ServiceMaker) -> FlaskClient:
    return services.client(SPEC, HANDLERS, config={"max_body_size": 1000})


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.json
    assert ERROR_KEYS <= body.keys(), body
    assert body["status"] == status
    assert body["error"] == code
    assert isinstance(body["error_id"], str) and len(body["error_id"]) >= 16
    assert body["error_description"]
    return body


def test_404(client: FlaskClient) -> None:
    assert_error(client.get("/nowhere"), 404, "NOT_FOUND")


def test_405_names_the_allowed_methods(client: FlaskClient) -> None:
    response = client.delete("/items")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["Allow"]


def test_413_over_max_body_size(client: FlaskClient) -> None:
    response = client.post("/items", json={"name": "x" * 2000})
    assert_error(response, 413, "REQUEST_TOO_LARGE")
    assert client.post("/items", json={"name": "x" * 100}).status_code == 201


def test_415_for_a_body_that_is_not_json(client: FlaskClient) -> None:
    assert_error(client.post("/items", data="name=x", content_type="text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE")


def test_malformed_json(client: FlaskClient) -> None:
    body = assert_error(client.post("/items", data="{nope", content_type="application/json"), 400, "MALFORMED_JSON")
    assert "not valid JSON" in body["error_description"]


def test_a_raised_macaron_exception_subclass(client: FlaskClient) -> None:
    body = assert_error(client.get("/fail/subclass"), 409, "OUT_OF_STOCK")
    assert body["error_description"] == "sku 12 is out of stock"
    assert body["user_message"] == "Sorry, sold out."


def test_an_add_error_class_raised_or_returned(client: FlaskClient) -> None:
    body = assert_error(client.get("/fail/added"), 403, "NOT_YOURS")
    assert body["user_message"] == "Not yours."
    assert_error(client.get("/fail/returned"), 403, "NOT_YOURS")


def test_flask_abort_and_werkzeug_errors_keep_their_status(client: FlaskClient) -> None:
    body = assert_error(client.get("/fail/abort"), 401, "UNAUTHORIZED")
    assert body["error_description"] == "who are you?"
    assert_error(client.get("/fail/teapot"), 418, "I_M_A_TEAPOT")


def test_an_uncaught_exception_is_a_500_that_leaks_nothing(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="macaron"):
        response = client.get("/fail/crash")
    body = assert_error(response, 500, "SERVER_ERROR")
    assert "hunter2" not in response.text
    assert "KeyError" not in response.text
    assert "Traceback" not in response.text
    assert "user_message" not in body
    # The crash is in the log, under the error_id the caller got.
    assert body["error_id"] in caplog.text
    assert "hunter2" in caplog.text


def test_on_error_sees_and_decorates_every_error(services: ServiceMaker) -> None:
    seen: list[tuple[str, str | None, str | None]] = []

    class Reporter:
        @hookimpl
        def on_error(self, error: dict[str, Any], exception: BaseException | None, operation: Operation | None) -> None:
            seen.append((error["error"], type(exception).__name__ if exception else None, operation.name if operation else None))
            error["user_message"] = "Something went wrong"
            error["status"] = 200  # not allowed to change, and ignored

    client = services.build(services.write(SPEC, HANDLERS, config={"max_body_size": 100}), plugins=(Reporter(),)).test_client()
    response = client.get("/fail/crash")
    assert response.status_code == 500
    assert response.json["status"] == 500
    assert response.json["user_message"] == "Something went wrong"
    assert client.get("/nowhere").json["user_message"] == "Something went wrong"
    assert client.get("/fail/subclass").status_code == 409
    assert [entry[0] for entry in seen] == ["SERVER_ERROR", "NOT_FOUND", "OUT_OF_STOCK"]
    assert seen[0][1] == "KeyError" and seen[0][2] == "fail"
    assert seen[1][2] is None
    # werkzeug's errors raised while serving an operation are reported with it
    assert client.get("/fail/abort").status_code == 401
    assert client.post("/items", json={"name": "x" * 200}).status_code == 413
    assert seen[3:] == [("UNAUTHORIZED", "Unauthorized", "fail"), ("REQUEST_TOO_LARGE", "RequestEntityTooLarge", "POST /items")]


def test_abort_with_a_response_sends_that_response(services: ServiceMaker) -> None:
    handlers = HANDLERS.replace(
        'if how == "abort":',
        'if how == "custom":\n        from flask import Response, abort\n        abort(Response("plain", status=299))\n    if how == "abort":',
    )
    client = services.client(SPEC, handlers)
    response = client.get("/fail/custom")
    assert (response.status_code, response.data) == (299, b"plain")


def test_a_failing_on_error_hook_does_not_change_the_response(services: ServiceMaker) -> None:
    class Broken:
        @hookimpl
        def on_error(self, error: dict[str, Any]) -> None:
            raise RuntimeError("reporter down")

    client = services.build(services.write(SPEC, HANDLERS), plugins=(Broken(),)).test_client()
    assert_error(client.get("/fail/subclass"), 409, "OUT_OF_STOCK")
