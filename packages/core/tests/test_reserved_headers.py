"""OpenAPI 3 header parameters named Accept, Content-Type or Authorization: ignored, or refused for Authorization."""

from __future__ import annotations

import logging

import pytest

from macaron.spec import SpecError
from service_maker import ServiceMaker

SPEC = """
openapi: 3.0.3
info: {{title: headers, version: '1'}}
paths:
  /hello:
    post:
      operationId: HANDLERS.hello
      parameters:
        - {{name: {name}, in: header, required: true, schema: {{type: string, enum: [never-sent]}}}}
        - {{name: X-Tag, in: header, schema: {{type: string}}}}
      requestBody:
        content:
          application/json: {{schema: {{type: object}}}}
      responses:
        '200': {{description: ok, content: {{application/json: {{schema: {{type: object}}}}}}}}
"""

HANDLERS = "def hello(body, x_tag=None, **others):\n    return {'x_tag': x_tag, 'others': sorted(others)}\n"


@pytest.mark.parametrize("name", ["Accept", "content-type"])
def test_accept_and_content_type_parameters_are_ignored_with_a_warning(services: ServiceMaker, caplog: pytest.LogCaptureFixture, name: str) -> None:
    with caplog.at_level(logging.WARNING, logger="macaron"):
        client = services.client(SPEC.format(name=name), HANDLERS, header=False)
    assert any(f"header parameter '{name}' ignored" in record.getMessage() and "x.yaml" in record.getMessage() for record in caplog.records)
    # Neither required nor read: the request's own Accept and Content-Type do their usual work.
    response = client.post("/hello", json={}, headers={"X-Tag": "t", "Accept": "application/json"})
    assert response.status_code == 200
    assert response.get_json() == {"x_tag": "t", "others": []}


def test_an_authorization_parameter_stops_start_up_pointing_to_security(services: ServiceMaker) -> None:
    root = services.write(SPEC.format(name="Authorization"), HANDLERS, header=False)
    with pytest.raises(SpecError) as caught:
        services.build(root)
    assert caught.value.pointer == "/paths/~1hello/post/parameters/0"
    assert "'security'" in caught.value.reason
