"""x-decorate-server on one handler; the wrap_endpoint hook on every handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from macaron import hookimpl
from macaron.spec import Operation, SpecError
from service_maker import ServiceMaker

SPEC = """
paths:
  /plain:
    get:
      operationId: plain
      x-bind-server: HANDLERS.plain
      responses:
        200: {description: ok, schema: {$ref: '#/definitions/Said'}}
  /decorated/{who}:
    get:
      operationId: decorated
      x-bind-server: HANDLERS.decorated
      x-decorate-server: HANDLERS.shout
      x-audit: sensitive
      parameters:
        - {name: who, in: path, required: true, type: string}
      responses:
        200: {description: ok, schema: {$ref: '#/definitions/Said'}}
definitions:
  Said:
    type: object
    properties:
      said: {type: string}
      wrapped: {type: array, items: {type: string}}
"""

HANDLERS = """
import functools

def shout(handler):
    @functools.wraps(handler)
    def wrapper(**kwargs):
        result = handler(**kwargs)
        result["said"] = result["said"].upper()
        return result
    return wrapper

def plain():
    return {"said": "plain"}

def decorated(who):
    return {"said": "hi " + who}
"""


def test_x_decorate_server_wraps_only_its_handler(services: ServiceMaker) -> None:
    client = services.client(SPEC, HANDLERS)
    assert client.get("/decorated/ann").json == {"said": "HI ANN"}
    assert client.get("/plain").json == {"said": "plain"}


def test_a_missing_decorator_is_a_start_up_error(services: ServiceMaker) -> None:

    root = services.write(SPEC.replace("HANDLERS.shout", "HANDLERS.whisper"), HANDLERS)
    with pytest.raises(SpecError, match=r"decorator .*whisper") as caught:
        services.build(root)
    assert caught.value.operation == "decorated"


def test_wrap_endpoint_wraps_every_handler_with_its_operation_at_hand(services: ServiceMaker) -> None:
    seen: list[tuple[str, str, str, Any]] = []

    class Audit:
        @hookimpl
        def wrap_endpoint(self, handler: Callable[..., Any], operation: Operation) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
            seen.append((operation.api, operation.method, operation.path, operation.extensions.get("x-audit")))

            def decorator(inner: Callable[..., Any]) -> Callable[..., Any]:
                def wrapper(*args: Any, **kwargs: Any) -> Any:
                    result = inner(*args, **kwargs)
                    result["wrapped"] = [operation.name, *sorted(kwargs)]
                    return result

                return wrapper

            return decorator

    client = services.build(services.write(SPEC, HANDLERS), plugins=(Audit(),)).test_client()
    assert client.get("/plain").json == {"said": "plain", "wrapped": ["plain"]}
    # x-decorate-server is applied first, the plugin's wrapper around it
    assert client.get("/decorated/bob").json == {"said": "HI BOB", "wrapped": ["decorated", "who"]}
    assert ("x", "get", "/decorated/{who}", "sensitive") in seen
    assert ("ping", "get", "/ping", None) in seen  # the built-in API goes through the same machinery
